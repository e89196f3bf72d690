#!/bin/sh
# Run on the builder by `amictl bake` (AWS-RunShellScript), one command per line.
set -eu
mkdir -p /usr/share/nginx/html
echo ok > /usr/share/nginx/html/healthz
systemctl restart nginx
