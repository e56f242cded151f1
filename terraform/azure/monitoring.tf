resource "azurerm_monitor_action_group" "alerts" {
  count = var.monitoring == null ? 0 : 1

  name                = "${local.name}-alerts"
  resource_group_name = azurerm_resource_group.this.name
  short_name          = substr(local.name, 0, 12)
  location            = "global"
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = try(var.monitoring.alert_email, null) == null ? [] : [var.monitoring.alert_email]
    content {
      name                    = "email"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_metric_alert" "cpu_high" {
  count = var.monitoring == null ? 0 : var.instance_count

  name                     = "${local.name}-cpu-high-app-${count.index + 1}"
  resource_group_name      = azurerm_resource_group.this.name
  scopes                   = [azurerm_linux_virtual_machine.app[count.index].id]
  description              = "${local.name}: CPU above ${var.monitoring.cpu_alarm_threshold}%"
  severity                 = 2
  enabled                  = var.monitoring.alerts_enabled
  frequency                = "PT5M"
  window_size              = "PT10M"
  target_resource_type     = "Microsoft.Compute/virtualMachines"
  target_resource_location = var.region
  tags                     = var.tags

  criteria {
    metric_namespace = "Microsoft.Compute/virtualMachines"
    metric_name      = "Percentage CPU"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = var.monitoring.cpu_alarm_threshold
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts[0].id
  }
}
