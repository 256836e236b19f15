module scim.optimaite.eu/bench/loadgen

go 1.22
