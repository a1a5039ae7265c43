package agent_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// insecureSkips returns the positions in src where tls.Config's
// InsecureSkipVerify is set to anything but the literal false, in a
// composite literal or by assignment.
func insecureSkips(t *testing.T, fset *token.FileSet, name string, src any) []token.Position {
	t.Helper()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []token.Position
	isFalse := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == "false"
	}
	isField := func(e ast.Expr) bool {
		switch k := e.(type) {
		case *ast.Ident:
			return k.Name == "InsecureSkipVerify"
		case *ast.SelectorExpr:
			return k.Sel.Name == "InsecureSkipVerify"
		}
		return false
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.KeyValueExpr:
			if isField(x.Key) && !isFalse(x.Value) {
				out = append(out, fset.Position(x.Pos()))
			}
		case *ast.AssignStmt:
			for i, l := range x.Lhs {
				if isField(l) && (i >= len(x.Rhs) || !isFalse(x.Rhs[i])) {
					out = append(out, fset.Position(x.Pos()))
				}
			}
		}
		return true
	})
	return out
}

// TestNoInsecureSkipVerify guards the rule that certificate verification is
// never turned off outside tests: every tls.Config in the module's non-test
// code verifies the peer (pins come on top of chain verification, in
// VerifyConnection). Test files and test-helper packages (a directory whose
// name ends in "test", such as keystoretest) are exempt.
func TestNoInsecureSkipVerify(t *testing.T) {
	fset := token.NewFileSet()
	sample := `package p
import "crypto/tls"
var a = &tls.Config{InsecureSkipVerify: true}
var b = tls.Config{InsecureSkipVerify: false}
func f(c *tls.Config, v bool) { c.InsecureSkipVerify = v; c.InsecureSkipVerify = false }`
	if got := insecureSkips(t, fset, "sample.go", sample); len(got) != 2 {
		t.Fatalf("detector found %d of 2 planted settings: %v", len(got), got)
	}

	root := ".."
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "dist" || strings.HasSuffix(name, "test")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		n++
		for _, pos := range insecureSkips(t, fset, p, nil) {
			t.Errorf("%s: InsecureSkipVerify set outside a test; verify the peer (and add pins in VerifyConnection) instead", pos)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("scanned only %d files; is the walk rooted at the module?", n)
	}
}
