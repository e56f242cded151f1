locals {
  database_ports    = { postgres = 5432, mysql = 3306 }
  database_versions = { postgres = "16", mysql = "8.0" }
}

# A Cloud SQL name cannot be reused for a week after deletion: a random suffix lets a stack be re-created.
resource "random_id" "database" {
  count = var.database == null ? 0 : 1

  byte_length = 3
}

resource "random_password" "database" {
  count = var.database == null ? 0 : 1

  length      = 32
  min_lower   = 2
  min_upper   = 2
  min_numeric = 2
  special     = false
}

resource "google_sql_database_instance" "this" {
  count = var.database == null ? 0 : 1

  name                = "${local.name}-db-${random_id.database[0].hex}"
  region              = var.region
  database_version    = "${upper(var.database.engine)}_${replace(coalesce(var.database.engine_version, local.database_versions[var.database.engine]), ".", "_")}"
  deletion_protection = local.production

  settings {
    tier                        = var.database.instance_class
    edition                     = "ENTERPRISE"
    availability_type           = var.database.multi_az ? "REGIONAL" : "ZONAL"
    disk_size                   = var.database.storage_gb
    disk_type                   = "PD_SSD"
    disk_autoresize             = false
    deletion_protection_enabled = local.production
    user_labels                 = var.tags

    backup_configuration {
      enabled                        = var.database.backup_retention_days > 0
      point_in_time_recovery_enabled = var.database.backup_retention_days > 0 && var.database.engine == "postgres"
      binary_log_enabled             = var.database.backup_retention_days > 0 && var.database.engine == "mysql"
      backup_retention_settings {
        retained_backups = max(var.database.backup_retention_days, 1)
        retention_unit   = "COUNT"
      }
    }

    # No public address; reached through the Private Service Connect endpoint below, inside the tenant's plan.
    ip_configuration {
      ipv4_enabled = false
      ssl_mode     = "ENCRYPTED_ONLY"
      psc_config {
        psc_enabled               = true
        allowed_consumer_projects = [data.google_client_config.current.project]
      }
    }
  }
}

resource "google_sql_user" "app" {
  count = var.database == null ? 0 : 1

  name     = "app"
  instance = google_sql_database_instance.this[0].name
  password = random_password.database[0].result
}

resource "google_compute_address" "database" {
  count = var.database == null ? 0 : 1

  name         = "${local.name}-database"
  region       = var.region
  address_type = "INTERNAL"
  subnetwork   = google_compute_subnetwork.private[1].id
  labels       = var.tags
}

resource "google_compute_forwarding_rule" "database" {
  count = var.database == null ? 0 : 1

  name                  = "${local.name}-database"
  region                = var.region
  network               = google_compute_network.this.id
  ip_address            = google_compute_address.database[0].id
  target                = google_sql_database_instance.this[0].psc_service_attachment_link
  load_balancing_scheme = ""
  labels                = var.tags
}
