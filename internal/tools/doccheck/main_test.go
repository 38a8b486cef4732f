package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReportsEachUndocumentedExportedName(t *testing.T) {
	missing, err := checkDir(filepath.Join("testdata", "bad"))
	require.NoError(t, err)
	want := []string{
		"package bad has no package comment",
		"func Undocumented has no doc comment",
		"type T has no doc comment",
		"method T.Method has no doc comment",
		"const Loose has no doc comment",
	}
	require.Len(t, missing, len(want), "%q", missing)
	for _, w := range want {
		assert.True(t, containsSuffix(missing, w), "want a line ending %q in %q", w, missing)
	}
}

func TestAcceptsADocumentedPackage(t *testing.T) {
	missing, err := checkDir(filepath.Join("testdata", "good"))
	require.NoError(t, err)
	assert.Empty(t, missing)
}

func containsSuffix(lines []string, suffix string) bool {
	for _, l := range lines {
		if len(l) >= len(suffix) && l[len(l)-len(suffix):] == suffix {
			return true
		}
	}
	return false
}
