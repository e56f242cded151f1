variable "password" {
  type      = string
  sensitive = true
}

variable "generation" {
  type = string
}

# tainted before the plan: replaced
resource "terraform_data" "app" {
  input = {
    tags  = ["public", var.password]
    block = [{ name = "web-${var.generation}", token = var.password }]
  }
}

# updated in place: list-shaped and nested-block sensitivity markers
resource "terraform_data" "upd" {
  input = {
    tags   = ["public-${var.generation}", var.password]
    block  = [{ name = "web-${var.generation}", token = var.password }]
    labels = sensitive({ owner = "ZQX-label-${var.generation}" })
  }
}
