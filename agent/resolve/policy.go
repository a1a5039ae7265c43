package resolve

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// Policy decides which local callers may resolve which credentials. The
// first rule that matches the caller decides; no match is a refusal. The
// daemon fills it from the config's policy section.
type Policy struct {
	Rules []Rule
}

// Rule matches a caller by OS identity. Within a rule every non-empty field
// must match (AND); within a list any entry may match (OR).
type Rule struct {
	Name string
	// Linux identities.
	UIDs   []uint32
	Users  []string
	GIDs   []uint32
	Groups []string
	// Windows identities: user or group SIDs (S-1-5-...).
	SIDs []string
	// Executables restricts the caller's image path (exact, cleaned).
	Executables []string
	// Credentials the rule grants; "*" grants all, "prefix-*" a prefix.
	Credentials []string
	// Operations the rule grants: resolve, check. Empty: both.
	Operations []string
	// Owners whose credentials the rule can release (delivery SPEC section
	// 8). Empty: only credentials delivered without an owner.
	Owners []string
}

// rule is a Rule compiled for matching. A field that is set in the
// config stays a condition even if none of its entries could be resolved
// (an unknown group name), so such a rule fails closed.
type rule struct {
	name string

	hasUIDs, hasUsers, hasGIDs, hasGroups, hasSIDs, hasExes bool

	uids     map[uint32]bool
	users    map[string]bool
	gids     map[uint32]bool // GIDs
	groupIDs map[uint32]bool // Groups resolved to gids (Linux)
	groupSID map[string]bool // Groups resolved to SIDs (Windows)
	sids     map[string]bool
	exes     map[string]bool
	creds    []string
	ops      map[Op]bool // nil: every operation
	// owners are the namespaces the rule releases credentials from, sorted;
	// [""] (the unowned namespace) when the rule lists no owners.
	owners []string
}

var windowsOS = runtime.GOOS == "windows"

func normExe(p string) string {
	p = filepath.Clean(p)
	if windowsOS {
		p = strings.ToLower(p)
	}
	return p
}

func normUser(u string) string {
	if windowsOS {
		return strings.ToLower(u)
	}
	return u
}

func compilePolicy(p Policy, lookupGroup func(string) (string, error), log zerolog.Logger) []*rule {
	out := make([]*rule, 0, len(p.Rules))
	for _, cr := range p.Rules {
		r := &rule{
			name:     cr.Name,
			hasUIDs:  len(cr.UIDs) > 0,
			hasUsers: len(cr.Users) > 0,
			hasGIDs:  len(cr.GIDs) > 0, hasGroups: len(cr.Groups) > 0,
			hasSIDs: len(cr.SIDs) > 0, hasExes: len(cr.Executables) > 0,
			uids: map[uint32]bool{}, users: map[string]bool{}, gids: map[uint32]bool{},
			groupIDs: map[uint32]bool{}, groupSID: map[string]bool{}, sids: map[string]bool{}, exes: map[string]bool{},
			creds: cr.Credentials,
		}
		r.owners = slices.Sorted(slices.Values(cr.Owners))
		if len(r.owners) == 0 {
			r.owners = []string{""}
		}
		for _, u := range cr.UIDs {
			r.uids[u] = true
		}
		for _, u := range cr.Users {
			r.users[normUser(u)] = true
		}
		for _, g := range cr.GIDs {
			r.gids[g] = true
		}
		for _, s := range cr.SIDs {
			r.sids[strings.ToUpper(s)] = true
		}
		for _, e := range cr.Executables {
			r.exes[normExe(e)] = true
		}
		for _, g := range cr.Groups {
			id, err := lookupGroup(g)
			if err != nil {
				log.Warn().Str("rule", cr.Name).Str("group", g).Err(err).Msg("policy group not found; this part of the rule matches nobody")
				continue
			}
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				r.groupIDs[uint32(n)] = true
			} else {
				r.groupSID[strings.ToUpper(id)] = true
			}
		}
		if len(cr.Operations) > 0 {
			r.ops = map[Op]bool{}
			for _, o := range cr.Operations {
				r.ops[Op(o)] = true
			}
		}
		out = append(out, r)
	}
	return out
}

// matches reports whether every condition of r holds for id. Linux
// conditions (uids, gids) never match a Windows identity, whose UID is 0.
// An identity the OS did not vouch for (localsock.Identity.Verified) matches
// nothing, and neither does a rule with no account condition: executables
// alone would match any user who runs the allowed binary.
func (r *rule) matches(id *localsock.Identity) bool {
	if id == nil || !id.Verified {
		return false
	}
	unix := id.SID == ""
	if !r.hasUIDs && !r.hasUsers && !r.hasGIDs && !r.hasGroups && !r.hasSIDs {
		return false // config validation forbids this; never match everyone
	}
	if r.hasUIDs && !(unix && r.uids[id.UID]) {
		return false
	}
	if r.hasUsers && (id.Username == "" || !r.users[normUser(id.Username)]) {
		return false
	}
	if r.hasGIDs && !(unix && anyGID(id, r.gids)) {
		return false
	}
	if r.hasGroups && !((unix && anyGID(id, r.groupIDs)) || (!unix && anySID(id, r.groupSID))) {
		return false
	}
	if r.hasSIDs && (unix || !anySID(id, r.sids)) {
		return false
	}
	if r.hasExes && (id.Exe == "" || !r.exes[normExe(id.Exe)]) {
		return false
	}
	return true
}

func anyGID(id *localsock.Identity, set map[uint32]bool) bool {
	for g := range set {
		if id.InGroup(g) {
			return true
		}
	}
	return false
}

func anySID(id *localsock.Identity, set map[string]bool) bool {
	if set[strings.ToUpper(id.SID)] {
		return true
	}
	for _, s := range id.GroupSIDs {
		if set[strings.ToUpper(s)] {
			return true
		}
	}
	return false
}

func (r *rule) grants(name string) bool {
	for _, p := range r.creds {
		switch {
		case p == "*":
			return true
		case strings.HasSuffix(p, "*"):
			if strings.HasPrefix(name, p[:len(p)-1]) {
				return true
			}
		case p == name:
			return true
		}
	}
	return false
}

// authorize applies the first rule that matches the caller. It returns that
// rule if it grants the operation on every name.
func (r *Resolver) authorize(caller *localsock.Identity, req Request) (*rule, *Error) {
	for _, ru := range r.rules {
		if !ru.matches(caller) {
			continue
		}
		if ru.ops != nil && !ru.ops[req.Op] {
			return nil, &Error{Class: apitype.ClassForbidden, Rule: ru.name, Message: fmt.Sprintf("rule %q does not grant %s", ru.name, req.Op)}
		}
		var denied []string
		for _, n := range req.Names {
			if !ru.grants(n) {
				denied = append(denied, strconv.Quote(n))
			}
		}
		if len(denied) > 0 {
			return nil, &Error{Class: apitype.ClassForbidden, Rule: ru.name, Message: fmt.Sprintf("rule %q does not grant %s", ru.name, strings.Join(denied, ", "))}
		}
		return ru, nil
	}
	return nil, &Error{Class: apitype.ClassForbidden, Message: fmt.Sprintf("no rule matched the caller (%s)", caller.Key())}
}
