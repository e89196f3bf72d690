# A small Terraform module as a team writes it. `amictl plan --iac examples/iac` reads it:
# each of the three ways it names an image keeps that image (docs/iac.md).

variable "bastion_ami" {
  description = "Pinned by hand (replace with one of yours): a literal image id."
  default     = "ami-0a1b2c3d4e5f60718"
}

resource "aws_instance" "bastion" {
  ami           = var.bastion_ami
  instance_type = "t3.micro"
}

# Follows the web-server release channel: whatever `amictl promote` put there.
resource "aws_launch_template" "web" {
  name          = "web"
  image_id      = "resolve:ssm:/amictl/channels/web-server/prod"
  instance_type = "t3.small"
}

# Floating: the newest batch-worker image at every `terraform apply`.
data "aws_ami" "batch" {
  most_recent = true
  owners      = ["self"]
  name_regex  = "^batch-worker-"

  filter {
    name   = "name"
    values = ["batch-worker-*"]
  }

  filter {
    name   = "tag:family"
    values = ["batch-worker"]
  }
}

resource "aws_launch_template" "batch" {
  name          = "batch"
  image_id      = data.aws_ami.batch.id
  instance_type = "m5.large"
}
