package apitype_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/resolve"
)

// producers are the packages whose failures reach a runner, relative to the
// module root: every class they name must be in apitype.Classes.
var producers = []string{"agent/ccp", "agent/resolve", "agent/localapi", "agent/localapi/client", "agent/cmd/credagent"}

// TestEveryClassIsDocumented: every class the CCP client, the resolver, the
// local API or its clients can produce is an apitype constant listed in
// Classes, with a wire name of its own, a row in README.md's
// troubleshooting table and an exception in the Python client; and the
// table has no row for a class that does not exist.
func TestEveryClassIsDocumented(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	consts := classConstants(t)
	listed := map[apitype.Class]bool{}
	for _, c := range apitype.Classes() {
		if !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(string(c)) {
			t.Errorf("class %q: a wire name is lower-case words joined by _", c)
		}
		if listed[c] {
			t.Errorf("class %q is listed twice", c)
		}
		listed[c] = true
	}
	for name, v := range consts {
		if !listed[v] {
			t.Errorf("apitype.%s (%q) is not in apitype.Classes", name, v)
		}
	}

	for _, dir := range producers {
		used, literals := classUses(t, filepath.Join(root, dir), consts)
		for _, name := range used {
			if _, ok := consts[name]; !ok {
				t.Errorf("%s uses apitype.%s, which is not a class constant", dir, name)
			}
		}
		for _, l := range literals {
			t.Errorf("%s: the class %s is written as a string literal; use its apitype constant", dir, l)
		}
	}

	sameClasses(t, "README.md's troubleshooting table", "a row", listed, readmeClasses(t, filepath.Join(root, "README.md")))
	sameClasses(t, "the Python client", "an exception", listed,
		pythonClasses(t, filepath.Join(root, "agent/localapi/client/python/credagent/__init__.py")))
}

// sameClasses fails for each class where has lacks its entry (what), and
// for each entry of has that is no class.
func sameClasses(t *testing.T, where, what string, classes, has map[apitype.Class]bool) {
	t.Helper()
	for c := range classes {
		if !has[c] {
			t.Errorf("%s has no %s for class %q", where, what, c)
		}
	}
	for c := range has {
		if !classes[c] {
			t.Errorf("%s has %s for %q, which is no class", where, what, c)
		}
	}
}

// TestClassOf: one ClassOf, IsForbidden and IsRateLimited see the errors of
// the CCP client, the resolver and the Go client, wrapped or not, and
// IsRateLimited means "turned away for load, retry later" on every side.
func TestClassOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		err         error
		class       apitype.Class
		forbidden   bool
		rateLimited bool
	}{
		{"nil", nil, "", false, false},
		{"plain error", errors.New("x"), "", false, false},
		{"ccp", &ccp.Error{Class: apitype.ClassNotFound}, apitype.ClassNotFound, false, false},
		{"ccp wrapped", fmt.Errorf("get: %w", &ccp.Error{Class: apitype.ClassTimeout}), apitype.ClassTimeout, false, false},
		{"resolve forbidden", &resolve.Error{Class: apitype.ClassForbidden}, apitype.ClassForbidden, true, false},
		{"resolve rate limited", &resolve.Error{Class: apitype.ClassRateLimited}, apitype.ClassRateLimited, false, true},
		{"client forbidden", fmt.Errorf("x: %w", &client.Error{Class: apitype.ClassForbidden}), apitype.ClassForbidden, true, false},
		{"client rate limited", &client.Error{Class: apitype.ClassRateLimited}, apitype.ClassRateLimited, false, true},
		{"client overloaded", &client.Error{Class: apitype.ClassOverloaded}, apitype.ClassOverloaded, false, true},
		{"client feed stale (503, not load)", &client.Error{Class: apitype.ClassFeedStale}, apitype.ClassFeedStale, false, false},
		{"client needs re-enrolment (503, not load)", &client.Error{Class: apitype.ClassNeedsReenroll}, apitype.ClassNeedsReenroll, false, false},
		{"unknown wire class", &client.Error{Class: "from_a_newer_agent"}, "from_a_newer_agent", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apitype.ClassOf(tt.err); got != tt.class {
				t.Errorf("ClassOf = %q, want %q", got, tt.class)
			}
			if got := apitype.IsForbidden(tt.err); got != tt.forbidden {
				t.Errorf("IsForbidden = %v", got)
			}
			if got := apitype.IsRateLimited(tt.err); got != tt.rateLimited {
				t.Errorf("IsRateLimited = %v", got)
			}
		})
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// classConstants reads the Class constants declared in this package: name
// -> value.
func classConstants(t *testing.T) map[string]apitype.Class {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "class.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]apitype.Class{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Class" {
				continue
			}
			for i, n := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = apitype.Class(v)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Class constants found in class.go")
	}
	return out
}

// classUses returns, for the non-test Go files of dir, the names of the
// apitype.ClassXxx identifiers they use, and the classes written there as
// string literals (a Class: field, a writeError argument, an assignment to
// a .Class) instead of as constants.
func classUses(t *testing.T, dir string, consts map[string]apitype.Class) (used, literals []string) {
	t.Helper()
	wire := map[string]bool{}
	for _, v := range consts {
		wire[string(v)] = true
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		// lit notes e if it is a class written as a string literal.
		lit := func(e ast.Expr) {
			if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
				if v, err := strconv.Unquote(b.Value); err == nil && wire[v] {
					literals = append(literals, fmt.Sprintf("%q at %s", v, fset.Position(b.Pos())))
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "apitype" && strings.HasPrefix(n.Sel.Name, "Class") &&
					n.Sel.Name != "Class" && n.Sel.Name != "Classes" && n.Sel.Name != "ClassOf" && n.Sel.Name != "Classed" {
					used = append(used, n.Sel.Name)
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Class" {
					lit(n.Value)
				}
			case *ast.CallExpr:
				if f, ok := n.Fun.(*ast.Ident); ok && f.Name == "writeError" {
					for _, a := range n.Args {
						lit(a)
					}
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if s, ok := l.(*ast.SelectorExpr); ok && s.Sel.Name == "Class" && i < len(n.Rhs) {
						lit(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return used, literals
}

// readmeClasses parses the table under "## Troubleshooting by error class":
// the first cell of each row is the class in backquotes, perhaps followed
// by the HTTP status.
func readmeClasses(t *testing.T, path string) map[apitype.Class]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Troubleshooting by error class\n")
	if !ok {
		t.Fatal(`README.md has no "## Troubleshooting by error class" section`)
	}
	cell := regexp.MustCompile("^`([a-z_]+)`( \\(HTTP [0-9]{3}\\))?$")
	out := map[apitype.Class]bool{}
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(line, "|")
		first := strings.TrimSpace(cells[1])
		if first == "class" || strings.HasPrefix(first, "---") {
			continue
		}
		m := cell.FindStringSubmatch(first)
		if m == nil {
			t.Errorf("README.md troubleshooting row %q: the first cell is not a `class`", line)
			continue
		}
		if out[apitype.Class(m[1])] {
			t.Errorf("README.md has two troubleshooting rows for %q", m[1])
		}
		if len(cells) < 4 || strings.TrimSpace(cells[2]) == "" || strings.TrimSpace(cells[3]) == "" {
			t.Errorf("README.md troubleshooting row for %q: what it means and what to do must both be filled in", m[1])
		}
		out[apitype.Class(m[1])] = true
	}
	if len(out) == 0 {
		t.Fatal("README.md's troubleshooting table has no rows")
	}
	return out
}

// pythonClasses reads the Python client's exception classes: each is made
// by _cls("Name", "wire_class", "doc").
func pythonClasses(t *testing.T, path string) map[apitype.Class]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[apitype.Class]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\w+ = _cls\("\w+", "([a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
		out[apitype.Class(m[1])] = true
	}
	if len(out) == 0 {
		t.Fatal("no exception classes found in the Python client")
	}
	return out
}
