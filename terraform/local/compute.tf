locals {
  instances = {
    for i in range(var.instance_count) : "app-${i + 1}" => {
      subnet     = local.private_names[i % length(local.private_names)]
      private_ip = cidrhost(local.subnets[local.private_names[i % length(local.private_names)]].cidr, 10 + floor(i / length(local.private_names)))
    }
  }
}

resource "enginelocal_document" "instance" {
  for_each = local.instances
  path     = "${local.root}/compute/${each.key}/instance.json"
  content = jsonencode({ kind = "instance", spec = {
    instance_type  = var.instance_type
    vcpu           = var.instance_vcpu
    memory_mib     = var.instance_memory_mib
    volume_size_gb = var.volume_size_gb
    subnet         = each.value.subnet
    private_ip     = each.value.private_ip
    tags           = var.tags
  } })
  depends_on = [enginelocal_document.subnet]
}

resource "enginelocal_disk" "root" {
  for_each   = local.instances
  path       = "${local.root}/compute/${each.key}/root.img"
  size_gb    = var.volume_size_gb
  depends_on = [enginelocal_document.instance]
}
