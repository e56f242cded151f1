# One variable per key of the settings the engine's planner produces for the gcp target (engine/planning.py,
# engine/clouds.py); the engine writes them as terraform.tfvars.json. Sizes are already GCP's names
# (engine/sizing.py: the one sizing table).

variable "customer" {
  description = "Customer id from the tenant record (stacks/<customer>.yml)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.customer))
    error_message = "The customer id must be 2-32 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment name from the customer file. \"production\" turns on the database's deletion protection."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.environment))
    error_message = "The environment name must be 2-20 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "project_name" {
  description = "The customer's project name (project_name in the customer file)."
  type        = string
}

variable "region" {
  description = "GCP region from the tenant record, e.g. europe-west4."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2,12}-[a-z]{3,10}[0-9]{1,2}$", var.region))
    error_message = "The region must be a GCP region name like europe-west4."
  }
}

variable "instance_type" {
  description = "Machine type the sizing table maps the customer's instance_type to (e.g. t3.small or small -> e2-small)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.instance_type))
    error_message = "The instance type must be a GCP machine type name like e2-small."
  }
}

variable "instance_architecture" {
  description = "CPU architecture of the machine type (the sizing table's): picks the Debian image and Shielded VM."
  type        = string

  validation {
    condition     = contains(["x86_64", "arm64"], var.instance_architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "instance_count" {
  description = "Number of application instances, spread over the private subnets and the region's zones."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count == floor(var.instance_count) && var.instance_count >= 1 && var.instance_count <= 20
    error_message = "The instance count must be a whole number from 1 to 20."
  }
}

variable "instance_vcpu" {
  description = "vCPUs the customer's size asks for. Informational: the machine type decides."
  type        = number
  default     = null
}

variable "instance_memory_mib" {
  description = "Memory (MiB) the customer's size asks for. Informational: the machine type decides."
  type        = number
  default     = null
}

variable "volume_size_gb" {
  description = "Size of each instance's balanced persistent boot disk, in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.volume_size_gb == floor(var.volume_size_gb) && var.volume_size_gb >= 8 && var.volume_size_gb <= 1024
    error_message = "The volume size must be a whole number from 8 to 1024."
  }
}

variable "network" {
  description = "The environment's address range and its public and private subnet ranges (the tenant's plan)."
  type = object({
    vpc_cidr        = string
    public_subnets  = list(string)
    private_subnets = list(string)
  })

  validation {
    condition     = alltrue([for cidr in concat([var.network.vpc_cidr], var.network.public_subnets, var.network.private_subnets) : can(cidrhost(cidr, 0))])
    error_message = "Every network and subnet range must be a valid IPv4 CIDR block."
  }

  validation {
    condition     = length(var.network.public_subnets) >= 1 && length(var.network.private_subnets) == 2
    error_message = "At least one public subnet and exactly two private subnets (the second holds the database's endpoint) are required."
  }
}

variable "database" {
  description = "Cloud SQL instance (PostgreSQL or MySQL), or null for none. The password is generated (random_password) and is the sensitive output database_password."
  type = object({
    engine                = optional(string, "postgres")
    engine_version        = optional(string) # null: postgres "16", mysql "8.0"
    instance_class        = string           # the Cloud SQL tier, e.g. db-custom-2-4096
    storage_gb            = optional(number, 20)
    backup_retention_days = optional(number, 7)
    multi_az              = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.database == null ? true : contains(["postgres", "mysql"], var.database.engine)
    error_message = "The database engine must be postgres or mysql."
  }

  validation {
    condition     = var.database == null ? true : can(regex("^db-(custom-[0-9]+-[0-9]+|g1-small|f1-micro)$", var.database.instance_class))
    error_message = "The database class must be a Cloud SQL tier like db-custom-2-4096."
  }

  validation {
    condition     = var.database == null ? true : var.database.storage_gb >= 10 && var.database.storage_gb <= 2048
    error_message = "The database storage must be from 10 to 2048 GB."
  }

  validation {
    condition     = var.database == null ? true : var.database.backup_retention_days >= 0 && var.database.backup_retention_days <= 35
    error_message = "The database backup retention must be from 0 to 35 days (0: no backups)."
  }
}

variable "monitoring" {
  description = "A Pub/Sub alerts topic, notification channels and one CPU alert policy per instance, or null for none."
  type = object({
    alerts_enabled      = optional(bool, true)
    alert_email         = optional(string)
    cpu_alarm_threshold = optional(number, 80)
    retention_days      = optional(number, 30) # used by the local target; this module creates no log bucket
  })
  default = null

  validation {
    condition     = var.monitoring == null ? true : var.monitoring.cpu_alarm_threshold >= 1 && var.monitoring.cpu_alarm_threshold <= 100
    error_message = "The CPU alarm threshold must be a percentage from 1 to 100."
  }
}

variable "tags" {
  description = "Labels for every resource that takes them (provider default_labels, and the labels default_labels does not reach): the customer's tags plus customer, environment and managed-by, made label-safe by the engine."
  type        = map(string)
  default     = {}
}

variable "upstream" {
  type        = any
  default     = {}
  description = "Outputs of the stacks this tenant consumes (tenant record `consumes`), by customer; filled by the engine."
}
