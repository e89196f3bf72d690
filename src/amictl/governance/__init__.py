"""AMI governance with the APIs AWS added in 2024-2026 (issue 20): Allowed AMIs from the
release channels, provenance watermarks, ancestry, AWS's own reference check and image
usage reports of shared images. Import the modules themselves (this package imports
nothing, so that ``build`` can use ``watermarks`` without a cycle)."""
