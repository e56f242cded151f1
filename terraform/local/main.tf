# The embedded local target for terraform-tagged customers: real resources on this
# machine, no cloud account. Same shape as programs/local (the Pulumi local target):
# a network with public/private subnets and route tables, instances with real sparse
# disks, an optional database and monitoring. The provider is the engine's own
# `engine/enginelocal` (terraform/provider), served from a filesystem mirror.

terraform {
  required_version = ">= 1.6"
  required_providers {
    enginelocal = {
      source  = "engine/enginelocal"
      version = "0.1.0"
    }
  }
  # The engine writes the backend (local path or s3 with use_lockfile) as an override file.
  backend "local" {}
}

locals {
  root = var.local_root
  net  = var.network
  subnets = merge(
    { for i, cidr in local.net.public_subnets : "public-${substr("ab", i, 1)}" => { cidr = cidr, tier = "public" } },
    { for i, cidr in local.net.private_subnets : "private-${substr("ab", i, 1)}" => { cidr = cidr, tier = "private" } },
  )
  private_names = sort([for name, s in local.subnets : name if s.tier == "private"])
}

resource "enginelocal_document" "network" {
  path = "${local.root}/network/network.json"
  # Peers (consumed tenants' networks) appear only when there are any, so other specs stay unchanged.
  content = jsonencode({ kind = "network", spec = merge(
    { cidr = local.net.vpc_cidr, tags = var.tags },
    { for key, peers in { peers = [for c in sort(keys(var.upstream)) : merge({ customer = c }, var.upstream[c])] } : key => peers if length(var.upstream) > 0 },
  ) })
}

resource "enginelocal_document" "subnet" {
  for_each   = local.subnets
  path       = "${local.root}/network/subnets/${each.key}.json"
  content    = jsonencode({ kind = "subnet", spec = { cidr = each.value.cidr, tier = each.value.tier, tags = var.tags } })
  depends_on = [enginelocal_document.network]
}

resource "enginelocal_document" "routes" {
  for_each = { public = "internet-gateway", private = "nat-gateway" }
  path     = "${local.root}/network/routes/${each.key}.json"
  content = jsonencode({ kind = "route-table", spec = {
    routes  = [{ destination = "0.0.0.0/0", target = each.value }]
    subnets = sort([for name, s in local.subnets : name if s.tier == each.key])
    tags    = var.tags
  } })
  depends_on = [enginelocal_document.subnet]
}
