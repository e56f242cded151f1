resource "enginelocal_document" "monitoring" {
  count = var.monitoring == null ? 0 : 1
  path  = "${local.root}/monitoring/alarms.json"
  content = jsonencode({ kind = "monitor", spec = {
    alarms = [for name in sort(keys(local.instances)) : {
      name      = "cpu-high-${name}"
      metric    = "cpu_percent"
      threshold = var.monitoring.cpu_alarm_threshold
      enabled   = var.monitoring.alerts_enabled
    }]
    notify         = var.monitoring.alert_email
    retention_days = var.monitoring.retention_days
    tags           = var.tags
  } })
  depends_on = [enginelocal_document.instance]
}
