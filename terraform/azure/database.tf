locals {
  # azurerm writes the SKU with its tier: B_Standard_B1ms, GP_Standard_D2ds_v5, MO_Standard_E2ds_v5.
  tier_prefix = { Burstable = "B", GeneralPurpose = "GP", MemoryOptimized = "MO" }
  # A flexible server's name is a DNS name, unique across Azure: the subscription makes it the provider's own.
  server_suffix = substr(sha256("${data.azurerm_client_config.current.subscription_id}/${local.name}"), 0, 8)
}

resource "azurerm_private_dns_zone" "database" {
  count = var.database == null ? 0 : 1

  name                = "${local.name}.private.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "database" {
  count = var.database == null ? 0 : 1

  name                  = "${local.name}-database"
  private_dns_zone_name = azurerm_private_dns_zone.database[0].name
  resource_group_name   = azurerm_resource_group.this.name
  virtual_network_id    = azurerm_virtual_network.this.id
  registration_enabled  = false
  tags                  = var.tags
}

resource "random_password" "database" {
  count = var.database == null ? 0 : 1

  length      = 32
  min_lower   = 2
  min_upper   = 2
  min_numeric = 2
  special     = false
}

resource "azurerm_postgresql_flexible_server" "this" {
  count = var.database == null ? 0 : 1

  name                          = "${local.name}-db-${local.server_suffix}"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = var.region
  version                       = coalesce(var.database.engine_version, "16")
  sku_name                      = "${local.tier_prefix[var.database.tier]}_${var.database.instance_class}"
  storage_mb                    = var.database.storage_gb * 1024
  backup_retention_days         = var.database.backup_retention_days
  geo_redundant_backup_enabled  = false
  delegated_subnet_id           = azurerm_subnet.database.id
  private_dns_zone_id           = azurerm_private_dns_zone.database[0].id
  public_network_access_enabled = false
  administrator_login           = "app"
  administrator_password        = random_password.database[0].result
  tags                          = var.tags

  dynamic "high_availability" {
    for_each = var.database.multi_az ? ["ZoneRedundant"] : []
    content {
      mode = high_availability.value
    }
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.database]
}

# Deletion protection for production, as RDS's on AWS.
resource "azurerm_management_lock" "database" {
  count = var.database != null && local.production ? 1 : 0

  name       = "${local.name}-database"
  scope      = azurerm_postgresql_flexible_server.this[0].id
  lock_level = "CanNotDelete"
  notes      = "production database: remove this lock to delete it"
}
