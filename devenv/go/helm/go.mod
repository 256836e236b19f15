// Wrapper module: builds the helm CLI.
module scim.optimaite.eu/devenv/helm

go 1.26.0

require helm.sh/helm/v3 v3.22.0
