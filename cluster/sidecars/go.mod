module hahaha.local/cluster/sidecars

go 1.26.0
