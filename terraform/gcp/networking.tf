resource "google_compute_network" "this" {
  name                    = "${local.name}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
  description             = "${local.name}: ${var.network.vpc_cidr}"
}

# Peer with the networks of the stacks this tenant consumes (their outputs, passed by the engine); the upstream's
# side peers back.
resource "google_compute_network_peering" "upstream" {
  for_each     = { for customer, outputs in var.upstream : customer => outputs if try(outputs.vpc_id, null) != null }
  name         = "${local.name}-peer-${each.key}"
  network      = google_compute_network.this.self_link
  peer_network = each.value.vpc_id
}

resource "google_compute_subnetwork" "public" {
  count = length(var.network.public_subnets)

  name                     = "${local.name}-public-${count.index}"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.network.public_subnets[count.index]
  private_ip_google_access = true
  stack_type               = "IPV4_ONLY"
}

resource "google_compute_subnetwork" "private" {
  count = length(var.network.private_subnets)

  name                     = "${local.name}-private-${count.index}"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.network.private_subnets[count.index]
  private_ip_google_access = true
  stack_type               = "IPV4_ONLY"
}

# Outbound for the private subnets through Cloud NAT on a reserved address (stable for allow-lists).
resource "google_compute_address" "nat" {
  name         = "${local.name}-nat"
  region       = var.region
  address_type = "EXTERNAL"
  labels       = var.tags
}

resource "google_compute_router" "nat" {
  name    = "${local.name}-router"
  network = google_compute_network.this.id
  region  = var.region
}

resource "google_compute_router_nat" "this" {
  name                               = "${local.name}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "MANUAL_ONLY"
  nat_ips                            = [google_compute_address.nat.self_link]
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  dynamic "subnetwork" {
    for_each = google_compute_subnetwork.private
    content {
      name                    = subnetwork.value.id
      source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
    }
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# A custom network denies all ingress: only HTTPS from the environment's network reaches the instances.
resource "google_compute_firewall" "app" {
  name          = "${local.name}-app-https"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = [var.network.vpc_cidr]
  target_tags   = [local.app_tag]
  description   = "${local.name} application instances"

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }
}
