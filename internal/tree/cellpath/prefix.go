package cellpath

import "fmt"

// ValidPrefix checks a tree's subject prefix (broker.prefix): one NATS
// subject token of letters, digits, '-' and '_', at most 32 characters,
// that also makes a valid stream name. The configuration and the cells
// service both check it, here once.
func ValidPrefix(p string) error {
	if p == "" || len(p) > 32 {
		return fmt.Errorf("subject prefix %q: 1 to 32 characters", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("subject prefix %q: only letters, digits, '-' and '_' (one NATS subject token: no '.', '*', '>' or spaces)", p)
		}
	}
	return nil
}
