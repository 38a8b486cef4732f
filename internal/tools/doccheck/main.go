// Command doccheck fails when an exported name of a library package has no
// doc comment, or a library package has no package comment. CI runs it on
// the whole module: go run ./internal/tools/doccheck ./...
//
// It reads source only (go/parser), so it needs nothing outside the standard
// library. Package main, test files and testdata are not API and are skipped.
// Like golint, a doc comment on a const or var group covers its members.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	roots := os.Args[1:]
	if len(roots) == 0 {
		roots = []string{"./..."}
	}
	var missing []string
	for _, root := range roots {
		m, err := check(strings.TrimSuffix(root, "/..."))
		if err != nil {
			fmt.Fprintln(os.Stderr, "doccheck:", err)
			os.Exit(2)
		}
		missing = append(missing, m...)
	}
	for _, m := range missing {
		fmt.Println(m)
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "doccheck: %d exported names without a doc comment\n", len(missing))
		os.Exit(1)
	}
}

// check walks root and returns one line for each exported name, in a library
// package below it, that has no doc comment.
func check(root string) ([]string, error) {
	var missing []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		m, err := checkDir(path)
		missing = append(missing, m...)
		return err
	})
	sort.Strings(missing)
	return missing, err
}

func checkDir(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	// Files by package name; build tags are ignored, which only makes the
	// check stricter.
	pkgs := map[string][]*ast.File{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		pkgs[f.Name.Name] = append(pkgs[f.Name.Name], f)
	}
	var missing []string
	report := func(pos token.Pos, what string) {
		missing = append(missing, fmt.Sprintf("%s: %s has no doc comment", fset.Position(pos), what))
	}
	for name, files := range pkgs {
		if name == "main" {
			continue
		}
		hasPkgDoc := false
		for _, f := range files {
			hasPkgDoc = hasPkgDoc || f.Doc != nil
		}
		if !hasPkgDoc {
			missing = append(missing, fmt.Sprintf("%s: package %s has no package comment", dir, name))
		}
		for _, f := range files {
			for _, decl := range f.Decls {
				checkDecl(decl, report)
			}
		}
	}
	return missing, nil
}

func checkDecl(decl ast.Decl, report func(token.Pos, string)) {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() || d.Doc != nil {
			return
		}
		if d.Recv != nil {
			recv := receiverType(d.Recv.List[0].Type)
			if !ast.IsExported(recv) {
				return // a method of an unexported type is not API
			}
			report(d.Pos(), "method "+recv+"."+d.Name.Name)
			return
		}
		report(d.Pos(), "func "+d.Name.Name)
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if s.Name.IsExported() && s.Doc == nil && d.Doc == nil {
					report(s.Pos(), "type "+s.Name.Name)
				}
			case *ast.ValueSpec:
				if s.Doc != nil || d.Doc != nil {
					continue
				}
				for _, n := range s.Names {
					if n.IsExported() {
						report(n.Pos(), d.Tok.String()+" "+n.Name)
					}
				}
			}
		}
	}
}

func receiverType(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}
