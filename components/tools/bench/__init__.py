"""Load benchmark: the seed's stress test and a C10K hold, tuned against stock, in the VM."""
