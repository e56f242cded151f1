# One variable per key of the settings the engine's planner produces for the azure target (engine/planning.py,
# engine/clouds.py); the engine writes them as terraform.tfvars.json. Sizes are already Azure's names
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
  description = "Environment name from the customer file. \"production\" locks the database against deletion."
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
  description = "Azure region (location) from the tenant record, e.g. westeurope."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{4,20}[0-9]?$", var.region))
    error_message = "The region must be an Azure location name like westeurope."
  }
}

variable "instance_type" {
  description = "Azure VM size the sizing table maps the customer's instance_type to (e.g. t3.small or small -> Standard_B2s)."
  type        = string

  validation {
    condition     = can(regex("^Standard_[A-Za-z0-9_]+$", var.instance_type))
    error_message = "The instance type must be an Azure VM size name like Standard_B2s."
  }
}

variable "instance_architecture" {
  description = "CPU architecture of the VM size (the sizing table's): picks the Ubuntu image and trusted launch."
  type        = string

  validation {
    condition     = contains(["x86_64", "arm64"], var.instance_architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "instance_count" {
  description = "Number of application virtual machines."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count == floor(var.instance_count) && var.instance_count >= 1 && var.instance_count <= 20
    error_message = "The instance count must be a whole number from 1 to 20."
  }
}

variable "instance_vcpu" {
  description = "vCPUs the customer's size asks for. Informational: the VM size decides."
  type        = number
  default     = null
}

variable "instance_memory_mib" {
  description = "Memory (MiB) the customer's size asks for. Informational: the VM size decides."
  type        = number
  default     = null
}

variable "volume_size_gb" {
  description = "Size of each machine's Standard SSD OS disk, in GiB."
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
    error_message = "At least one public subnet and exactly two private subnets (the machines', the database's) are required."
  }
}

variable "database" {
  description = "Azure Database for PostgreSQL flexible server, or null for none. The password is generated (random_password) and is the sensitive output database_password."
  type = object({
    engine                = optional(string, "postgres")
    engine_version        = optional(string) # null: "16"
    instance_class        = string           # the SKU name, e.g. Standard_B1ms
    tier                  = string           # its tier: Burstable, GeneralPurpose or MemoryOptimized
    storage_gb            = optional(number, 32)
    backup_retention_days = optional(number, 7)
    multi_az              = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.database == null ? true : var.database.engine == "postgres"
    error_message = "The azure target offers the database engine postgres only."
  }

  validation {
    condition     = var.database == null ? true : contains(["Burstable", "GeneralPurpose", "MemoryOptimized"], var.database.tier)
    error_message = "The database tier must be Burstable, GeneralPurpose or MemoryOptimized."
  }

  validation {
    condition     = var.database == null ? true : contains([32, 64, 128, 256, 512, 1024, 2048], var.database.storage_gb)
    error_message = "The database storage must be one of the flexible server's sizes: 32, 64, 128, 256, 512, 1024 or 2048 GiB."
  }

  validation {
    condition     = var.database == null ? true : var.database.backup_retention_days >= 7 && var.database.backup_retention_days <= 35
    error_message = "A flexible server keeps backups 7 to 35 days."
  }

  validation {
    condition     = var.database == null ? true : !(var.database.multi_az && var.database.tier == "Burstable")
    error_message = "Zone-redundant high availability (multi_az) needs a GeneralPurpose or MemoryOptimized SKU."
  }
}

variable "monitoring" {
  description = "An action group and one CPU metric alert per machine, or null for none."
  type = object({
    alerts_enabled      = optional(bool, true)
    alert_email         = optional(string)
    cpu_alarm_threshold = optional(number, 80)
    retention_days      = optional(number, 30) # used by the local target; this module creates no log workspace
  })
  default = null

  validation {
    condition     = var.monitoring == null ? true : var.monitoring.cpu_alarm_threshold >= 1 && var.monitoring.cpu_alarm_threshold <= 100
    error_message = "The CPU alarm threshold must be a percentage from 1 to 100."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them: the customer's tags plus customer, environment and managed-by."
  type        = map(string)
  default     = {}
}

variable "upstream" {
  type        = any
  default     = {}
  description = "Outputs of the stacks this tenant consumes (tenant record `consumes`), by customer; filled by the engine."
}
