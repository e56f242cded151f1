# One variable per key of the settings the engine's planner produces (engine/planning.py);
# the engine writes them as terraform.tfvars.json.

variable "customer" {
  description = "Customer id from the tenant record (stacks/<customer>.yml)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.customer))
    error_message = "The customer id must be 2-32 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment name from the customer file. \"production\" turns on deletion protection and a final snapshot for the database."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.environment))
    error_message = "The environment name must be 2-20 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "project_name" {
  description = "The customer's project name (project_name in the customer file)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,40}[a-z0-9]$", var.project_name))
    error_message = "The project name must be 2-42 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region from the tenant record."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "instance_type" {
  description = "EC2 instance type: <family>.<size> from the provider's catalog. Families ending in \"g\" run arm64."
  type        = string

  validation {
    condition     = can(regex("^(t3|t3a|t4g|m5|m6i|m7g|c5|c6i|r5|r6i)\\.(nano|micro|small|medium|large|xlarge|2xlarge)$", var.instance_type))
    error_message = "The instance type must be one of the families t3 t3a t4g m5 m6i m7g c5 c6i r5 r6i with a size nano micro small medium large xlarge 2xlarge."
  }
}

variable "instance_count" {
  description = "Number of application instances, spread over the private subnets."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count == floor(var.instance_count) && var.instance_count >= 1 && var.instance_count <= 20
    error_message = "The instance count must be a whole number from 1 to 20."
  }
}

variable "instance_vcpu" {
  description = "vCPUs of the instance type. Informational: used by the local target, not by this module."
  type        = number
  default     = null
}

variable "instance_memory_mib" {
  description = "Memory (MiB) of the instance type. Informational: used by the local target, not by this module."
  type        = number
  default     = null
}

variable "volume_size_gb" {
  description = "Size of each instance's encrypted gp3 root volume, in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.volume_size_gb == floor(var.volume_size_gb) && var.volume_size_gb >= 8 && var.volume_size_gb <= 1024
    error_message = "The volume size must be a whole number from 8 to 1024."
  }
}

variable "network" {
  description = "The environment's VPC CIDR and its public and private subnet CIDRs (the NAT gateway goes in the first public subnet)."
  type = object({
    vpc_cidr        = string
    public_subnets  = list(string)
    private_subnets = list(string)
  })

  validation {
    condition     = alltrue([for cidr in concat([var.network.vpc_cidr], var.network.public_subnets, var.network.private_subnets) : can(cidrhost(cidr, 0))])
    error_message = "Every VPC and subnet CIDR must be a valid IPv4 CIDR block."
  }

  validation {
    condition     = length(var.network.public_subnets) >= 1 && length(var.network.private_subnets) >= 1
    error_message = "At least one public and one private subnet are required."
  }
}

variable "database" {
  description = "Managed RDS database, or null for none. The master password is generated and kept by RDS in Secrets Manager."
  type = object({
    engine                = optional(string, "postgres")
    engine_version        = optional(string) # null: postgres "16", mysql "8.0"
    instance_class        = optional(string, "db.t3.micro")
    storage_gb            = optional(number, 20)
    backup_retention_days = optional(number, 7)
    multi_az              = optional(bool, false)
  })
  default = null

  # A conditional guards the attribute access: var.database may be null, and the
  # versions this module supports do not all short-circuit ||.
  validation {
    condition     = var.database == null ? true : contains(["postgres", "mysql"], var.database.engine)
    error_message = "The database engine must be postgres or mysql."
  }

  validation {
    condition     = var.database == null ? true : can(regex("^db\\.(t3|t4g|m5|m6i|r5|r6i)\\.(nano|micro|small|medium|large|xlarge|2xlarge)$", var.database.instance_class))
    error_message = "The database instance class must be db.<family>.<size> with a family t3 t4g m5 m6i r5 r6i."
  }

  validation {
    condition     = var.database == null ? true : var.database.storage_gb >= 5 && var.database.storage_gb <= 2048
    error_message = "The database storage must be from 5 to 2048 GiB."
  }

  validation {
    condition     = var.database == null ? true : var.database.backup_retention_days >= 0 && var.database.backup_retention_days <= 35
    error_message = "The database backup retention must be from 0 to 35 days."
  }
}

variable "monitoring" {
  description = "SNS alert topic and one CPU alarm per instance, or null for none."
  type = object({
    alerts_enabled      = optional(bool, true)
    alert_email         = optional(string)
    cpu_alarm_threshold = optional(number, 80)
    retention_days      = optional(number, 30) # used by the local target; this module creates no log groups
  })
  default = null

  validation {
    condition     = var.monitoring == null ? true : var.monitoring.cpu_alarm_threshold >= 1 && var.monitoring.cpu_alarm_threshold <= 100
    error_message = "The CPU alarm threshold must be a percentage from 1 to 100."
  }
}

variable "tags" {
  description = "Tags for every resource (provider default_tags): the customer's tags plus customer, environment and managed-by."
  type        = map(string)
  default     = {}
}

variable "upstream" {
  type        = any
  default     = {}
  description = "Outputs of the stacks this tenant consumes (tenant record `consumes`), by customer; filled by the engine."
}
