# The same names as every target's outputs (programs/gcp, terraform/outputs.tf); database_password is the
# generated one (sensitive). The database and alert outputs are null without a database or monitoring.

output "vpc_id" {
  description = "ID of the environment's VPC network."
  value       = google_compute_network.this.id
}

output "vpc_cidr" {
  description = "Address range of the environment (its subnets lie inside it)."
  value       = var.network.vpc_cidr
}

output "public_subnet_ids" {
  description = "IDs of the public subnets."
  value       = google_compute_subnetwork.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets."
  value       = google_compute_subnetwork.private[*].id
}

output "instance_ids" {
  description = "IDs of the application instances."
  value       = google_compute_instance.app[*].id
}

output "instance_ips" {
  description = "Private IP addresses of the application instances."
  value       = google_compute_instance.app[*].network_interface[0].network_ip
}

output "instance_type" {
  description = "Machine type of the application instances."
  value       = var.instance_type
}

output "database_endpoint" {
  description = "Database endpoint (the Private Service Connect address:port), or null without a database."
  value       = one([for address in google_compute_address.database : "${address.address}:${local.database_ports[var.database.engine]}"])
}

output "database_username" {
  description = "Database user name, or null without a database."
  value       = one(google_sql_user.app[*].name)
}

output "database_password" {
  description = "The generated database password, or null without a database."
  value       = one(random_password.database[*].result)
  sensitive   = true
}

output "alerts_topic_arn" {
  description = "ID of the alerts Pub/Sub topic, or null without monitoring."
  value       = one(google_pubsub_topic.alerts[*].id)
}
