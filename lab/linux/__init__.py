"""Linux personalities: the same Linux kernel on bare hardware, on L4 and on Mach (S97 §4)."""
