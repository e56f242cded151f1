# Same names as the Pulumi AWS program's exports (programs/aws). The database and
# alert outputs are null when the environment has no database or monitoring.

output "vpc_id" {
  description = "ID of the environment's VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = var.network.vpc_cidr
}

output "public_subnet_ids" {
  description = "IDs of the public subnets."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets."
  value       = aws_subnet.private[*].id
}

output "instance_ids" {
  description = "IDs of the application instances."
  value       = aws_instance.app[*].id
}

output "instance_ips" {
  description = "Private IP addresses of the application instances."
  value       = aws_instance.app[*].private_ip
}

output "instance_type" {
  description = "EC2 instance type of the application instances."
  value       = var.instance_type
}

output "database_endpoint" {
  description = "Database endpoint (host:port), or null without a database."
  value       = one(aws_db_instance.this[*].endpoint)
}

output "database_username" {
  description = "Database master user name (the password is in Secrets Manager), or null without a database."
  value       = one(aws_db_instance.this[*].username)
}

output "alerts_topic_arn" {
  description = "ARN of the alerts SNS topic, or null without monitoring."
  value       = one(aws_sns_topic.alerts[*].arn)
}
