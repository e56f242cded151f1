locals {
  ubuntu_sku     = { x86_64 = "server", arm64 = "server-arm64" } # Canonical ubuntu-24_04-lts image SKUs (Gen2)
  trusted_launch = var.instance_architecture == "x86_64"         # Azure offers no trusted launch for Arm64 sizes
}

# Generated once and kept in the state (sensitive); SSH stays closed: Run Command or Bastion reach the machines.
resource "random_password" "admin" {
  length      = 32
  min_lower   = 2
  min_upper   = 2
  min_numeric = 2
  special     = false
}

resource "azurerm_network_interface" "app" {
  count = var.instance_count

  name                = "${local.name}-app-${count.index + 1}"
  location            = var.region
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "app" {
  count = var.instance_count

  name                            = "${local.name}-app-${count.index + 1}"
  computer_name                   = "app-${count.index + 1}"
  location                        = var.region
  resource_group_name             = azurerm_resource_group.this.name
  size                            = var.instance_type
  admin_username                  = "azureuser"
  admin_password                  = random_password.admin.result
  disable_password_authentication = false
  network_interface_ids           = [azurerm_network_interface.app[count.index].id]
  secure_boot_enabled             = local.trusted_launch
  vtpm_enabled                    = local.trusted_launch
  tags                            = var.tags

  os_disk {
    name                 = "${local.name}-app-${count.index + 1}-os"
    caching              = "ReadWrite"
    storage_account_type = "StandardSSD_LRS"
    disk_size_gb         = var.volume_size_gb
  }

  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = local.ubuntu_sku[var.instance_architecture]
    version   = "latest"
  }
}
