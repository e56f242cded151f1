terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Partial configuration: the engine passes bucket, key, region and use_lockfile with
  # -backend-config at init, one state per customer × environment. For local state it
  # replaces this block with a generated override file.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

locals {
  name = "${var.customer}-${var.environment}"
}
