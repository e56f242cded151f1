# The same names as every target's outputs (programs/azure, terraform/outputs.tf); database_password is the
# generated one (sensitive). The database and alert outputs are null without a database or monitoring.

output "vpc_id" {
  description = "ID of the environment's virtual network."
  value       = azurerm_virtual_network.this.id
}

output "vpc_cidr" {
  description = "Address range of the virtual network."
  value       = var.network.vpc_cidr
}

output "public_subnet_ids" {
  description = "IDs of the public subnets."
  value       = azurerm_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets: the machines', then the database's."
  value       = [azurerm_subnet.app.id, azurerm_subnet.database.id]
}

output "instance_ids" {
  description = "IDs of the application virtual machines."
  value       = azurerm_linux_virtual_machine.app[*].id
}

output "instance_ips" {
  description = "Private IP addresses of the application virtual machines."
  value       = azurerm_network_interface.app[*].private_ip_address
}

output "instance_type" {
  description = "Azure VM size of the application virtual machines."
  value       = var.instance_type
}

output "database_endpoint" {
  description = "Database endpoint (host:port, resolvable inside the network), or null without a database."
  value       = one([for server in azurerm_postgresql_flexible_server.this : "${server.fqdn}:5432"])
}

output "database_username" {
  description = "Database administrator login, or null without a database."
  value       = one(azurerm_postgresql_flexible_server.this[*].administrator_login)
}

output "database_password" {
  description = "The generated database password, or null without a database."
  value       = one(random_password.database[*].result)
  sensitive   = true
}

output "alerts_topic_arn" {
  description = "ID of the alerts action group, or null without monitoring."
  value       = one(azurerm_monitor_action_group.alerts[*].id)
}
