# One variable per key of the engine's planned settings (engine/planning.py), written
# by the engine as terraform.tfvars.json from the validated customer file.

variable "customer" {
  type        = string
  description = "Customer id (validated by the engine)."
}

variable "environment" {
  type        = string
  description = "Environment name (validated by the engine)."
}

variable "project_name" {
  type        = string
  description = "The customer's project name."
}

variable "region" {
  type        = string
  description = "Unused by the local target; kept so both targets take the same inputs."
  default     = "local"
}

variable "instance_type" {
  type        = string
  description = "Instance type from the customer file."
}

variable "instance_count" {
  type        = number
  description = "How many application instances."
  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 20
    error_message = "instance_count must be between 1 and 20."
  }
}

variable "instance_vcpu" {
  type        = number
  description = "vCPUs of instance_type."
}

variable "instance_memory_mib" {
  type        = number
  description = "Memory of instance_type in MiB."
}

variable "volume_size_gb" {
  type        = number
  description = "Root disk size of each instance in GB."
}

variable "network" {
  type = object({
    vpc_cidr        = string
    public_subnets  = list(string)
    private_subnets = list(string)
  })
  description = "CIDRs planned by the engine (never overlapping across customers and environments)."
}

variable "database" {
  type = object({
    engine                = string
    engine_version        = optional(string)
    instance_class        = string
    storage_gb            = number
    backup_retention_days = number
    multi_az              = bool
  })
  default     = null
  description = "The database, or null for none."
}

variable "monitoring" {
  type = object({
    alerts_enabled      = bool
    alert_email         = optional(string)
    cpu_alarm_threshold = number
    retention_days      = number
  })
  default     = null
  description = "Monitoring, or null for none."
}

variable "tags" {
  type        = map(string)
  description = "Tags: the customer's plus customer/environment/managed-by."
}

variable "local_root" {
  type        = string
  description = "Where this customer × environment's resources live on this machine."
}

variable "upstream" {
  type        = any
  default     = {}
  description = "Outputs of the stacks this tenant consumes (tenant record `consumes`), by customer; filled by the engine."
}
