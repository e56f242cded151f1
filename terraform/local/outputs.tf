output "vpc_cidr" {
  value = var.network.vpc_cidr
}

output "network_path" {
  value = enginelocal_document.network.path
}

output "instance_ips" {
  value = [for name in sort(keys(local.instances)) : local.instances[name].private_ip]
}

output "instance_type" {
  value = var.instance_type
}

output "database_endpoint" {
  value = one([for d in enginelocal_document.database : "file://${d.path}"])
}

output "database_connection" {
  # Sensitive on purpose: the engine masks it in every rendering.
  value     = var.database == null ? null : "${var.database.engine}://app@${var.customer}-${var.environment}.local/${var.project_name}"
  sensitive = true
}

output "monitoring_path" {
  value = one(enginelocal_document.monitoring[*].path)
}
