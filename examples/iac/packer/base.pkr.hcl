# A Packer template that bakes on the newest base-al2023 image: that image is in use.
packer {
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

source "amazon-ebs" "app" {
  instance_type = "t3.small"
  ssh_username  = "ec2-user"
  ami_name      = "app-{{timestamp}}"

  source_ami_filter {
    filters = {
      name                  = "base-al2023-*"
      "tag:family"          = "base-al2023"
      "root-device-type"    = "ebs"
    }
    owners      = ["self"]
    most_recent = true
  }
}

build {
  sources = ["source.amazon-ebs.app"]
}
