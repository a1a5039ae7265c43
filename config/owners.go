package config

// validateOwners checks a rule's owners: each a name as the delivery format
// writes it (1 to 128 printable ASCII characters, no space at either end),
// none twice.
func validateOwners(key string, owners []string, bad func(key, format string, a ...any)) {
	seen := map[string]bool{}
	for _, o := range owners {
		ok := len(o) >= 1 && len(o) <= 128 && o[0] != ' ' && o[len(o)-1] != ' '
		for i := 0; ok && i < len(o); i++ {
			ok = o[i] >= 0x20 && o[i] <= 0x7e
		}
		if !ok {
			bad(key, "%q is not an owner name: 1 to 128 printable ASCII characters, no space at either end", o)
		}
		if seen[o] {
			bad(key, "%q is listed twice", o)
		}
		seen[o] = true
	}
}
