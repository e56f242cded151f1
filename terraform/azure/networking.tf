resource "azurerm_virtual_network" "this" {
  name                = "vnet-${local.name}"
  location            = var.region
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.network.vpc_cidr]
  tags                = var.tags
}

# Peer with the networks of the stacks this tenant consumes (their outputs, passed by the engine); the upstream's
# side peers back.
resource "azurerm_virtual_network_peering" "upstream" {
  for_each                     = { for customer, outputs in var.upstream : customer => outputs if try(outputs.vpc_id, null) != null }
  name                         = "peer-${each.key}"
  resource_group_name          = azurerm_resource_group.this.name
  virtual_network_name         = azurerm_virtual_network.this.name
  remote_virtual_network_id    = each.value.vpc_id
  allow_virtual_network_access = true
}

resource "azurerm_public_ip" "nat" {
  name                = "${local.name}-nat"
  location            = var.region
  resource_group_name = azurerm_resource_group.this.name
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = var.tags
}

resource "azurerm_nat_gateway" "this" {
  name                = "${local.name}-nat"
  location            = var.region
  resource_group_name = azurerm_resource_group.this.name
  sku_name            = "Standard"
  tags                = var.tags
}

resource "azurerm_nat_gateway_public_ip_association" "this" {
  nat_gateway_id       = azurerm_nat_gateway.this.id
  public_ip_address_id = azurerm_public_ip.nat.id
}

locals {
  # Inbound rules per subnet tier; everything else is denied (Azure's defaults would allow the whole network).
  inbound = {
    public   = []
    app      = [{ name = "https-from-network", source = var.network.vpc_cidr, port = "443" }]
    database = [{ name = "database-from-app", source = var.network.private_subnets[0], port = "5432" }]
  }
}

resource "azurerm_network_security_group" "this" {
  for_each = local.inbound

  name                = "${local.name}-${each.key}"
  location            = var.region
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags

  dynamic "security_rule" {
    for_each = each.value
    content {
      name                       = security_rule.value.name
      priority                   = 100 + security_rule.key
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_address_prefix      = security_rule.value.source
      source_port_range          = "*"
      destination_address_prefix = "*"
      destination_port_range     = security_rule.value.port
    }
  }

  security_rule {
    name                       = "deny-all-inbound"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_address_prefix      = "*"
    source_port_range          = "*"
    destination_address_prefix = "*"
    destination_port_range     = "*"
  }
}

# public-0/1: for the provider's load balancers; private-0: the virtual machines (outbound through the NAT gateway
# only); private-1: the database (delegated to the flexible server, so its address stays in the tenant's plan).
resource "azurerm_subnet" "public" {
  count = length(var.network.public_subnets)

  name                            = "public-${count.index}"
  resource_group_name             = azurerm_resource_group.this.name
  virtual_network_name            = azurerm_virtual_network.this.name
  address_prefixes                = [var.network.public_subnets[count.index]]
  default_outbound_access_enabled = false
}

resource "azurerm_subnet" "app" {
  name                            = "private-0"
  resource_group_name             = azurerm_resource_group.this.name
  virtual_network_name            = azurerm_virtual_network.this.name
  address_prefixes                = [var.network.private_subnets[0]]
  default_outbound_access_enabled = false
}

resource "azurerm_subnet" "database" {
  name                            = "private-1"
  resource_group_name             = azurerm_resource_group.this.name
  virtual_network_name            = azurerm_virtual_network.this.name
  address_prefixes                = [var.network.private_subnets[1]]
  default_outbound_access_enabled = false

  dynamic "delegation" {
    for_each = var.database == null ? [] : ["postgres"]
    content {
      name = delegation.value
      service_delegation {
        name    = "Microsoft.DBforPostgreSQL/flexibleServers"
        actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
      }
    }
  }
}

resource "azurerm_subnet_network_security_group_association" "public" {
  count = length(azurerm_subnet.public)

  subnet_id                 = azurerm_subnet.public[count.index].id
  network_security_group_id = azurerm_network_security_group.this["public"].id
}

resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.this["app"].id
}

resource "azurerm_subnet_network_security_group_association" "database" {
  subnet_id                 = azurerm_subnet.database.id
  network_security_group_id = azurerm_network_security_group.this["database"].id
}

resource "azurerm_subnet_nat_gateway_association" "app" {
  subnet_id      = azurerm_subnet.app.id
  nat_gateway_id = azurerm_nat_gateway.this.id
}
