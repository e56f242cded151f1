# The GCP target for terraform-tagged customers: the same stack as programs/gcp (Pulumi), resource for resource,
# with the google provider. The engine writes terraform.tfvars.json from its planner's settings: the machine type
# and Cloud SQL tier are already GCP's names (engine/sizing.py), the CIDRs the tenant's plan, the tags label-safe.

terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The engine writes the backend (a local path or s3 with use_lockfile) as an override file.
  backend "local" {}
}

# Credentials and the project come from the environment (GOOGLE_APPLICATION_CREDENTIALS written by
# google-github-actions/auth through workload identity federation, GOOGLE_CLOUD_PROJECT: docs/SETUP.md).
provider "google" {
  region         = var.region
  default_labels = var.tags
}

data "google_client_config" "current" {}

data "google_project" "current" {}

data "google_compute_zones" "available" {
  region = var.region
  status = "UP"
}

locals {
  name       = "${var.customer}-${var.environment}"
  production = var.environment == "production"
  app_tag    = "${local.name}-app"
}
