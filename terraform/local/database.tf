resource "enginelocal_document" "database" {
  count = var.database == null ? 0 : 1
  path  = "${local.root}/database/${var.project_name}.json"
  content = jsonencode({ kind = "database", spec = merge(var.database, {
    subnets = local.private_names
    tags    = var.tags
  }) })
  depends_on = [enginelocal_document.subnet]
}
