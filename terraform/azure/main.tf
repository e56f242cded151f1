# The Azure target for terraform-tagged customers: the same stack as programs/azure (Pulumi), resource for
# resource, with the azurerm provider. The engine writes terraform.tfvars.json from its planner's settings: the
# VM size and database SKU are already Azure's names (engine/sizing.py), the CIDRs the tenant's plan.

terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The engine writes the backend (a local path or s3 with use_lockfile) as an override file.
  backend "local" {}
}

# Credentials and the subscription come from the environment: ARM_CLIENT_ID, ARM_TENANT_ID, ARM_SUBSCRIPTION_ID
# with ARM_USE_OIDC=true in the workflows (docs/SETUP.md), never from this module.
provider "azurerm" {
  features {}
}

data "azurerm_client_config" "current" {}

locals {
  name       = "${var.customer}-${var.environment}"
  production = var.environment == "production"
}

resource "azurerm_resource_group" "this" {
  name     = "rg-${local.name}"
  location = var.region
  tags     = var.tags
}
