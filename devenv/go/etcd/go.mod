// Wrapper module: builds etcd (its server module carries local replace directives, so
// `go install ...@version` refuses it). Version matches the etcd client that the pinned
// Kubernetes release requires.
module scim.optimaite.eu/devenv/etcd

go 1.24

require go.etcd.io/etcd/server/v3 v3.6.5
