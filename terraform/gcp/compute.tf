locals {
  images = { x86_64 = "debian-cloud/debian-12", arm64 = "debian-cloud/debian-12-arm64" }
}

resource "google_compute_instance" "app" {
  count = var.instance_count

  name                      = "${local.name}-app-${count.index + 1}"
  machine_type              = var.instance_type
  zone                      = element(data.google_compute_zones.available.names, count.index)
  tags                      = [local.app_tag]
  labels                    = var.tags
  allow_stopping_for_update = true

  metadata = {
    block-project-ssh-keys = "true"
    enable-oslogin         = "TRUE"
  }

  boot_disk {
    auto_delete = true
    initialize_params {
      image  = local.images[var.instance_architecture]
      size   = var.volume_size_gb
      type   = "pd-balanced"
      labels = var.tags
    }
  }

  # No access_config: no external address (outbound through Cloud NAT).
  network_interface {
    subnetwork = element(google_compute_subnetwork.private[*].id, count.index)
  }

  dynamic "shielded_instance_config" {
    for_each = var.instance_architecture == "x86_64" ? ["shielded"] : []
    content {
      enable_secure_boot          = true
      enable_vtpm                 = true
      enable_integrity_monitoring = true
    }
  }
}
