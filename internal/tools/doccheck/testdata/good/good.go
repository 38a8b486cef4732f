// Package good documents everything it exports.
package good

// Documented is documented.
func Documented() {}

// T is a type.
type T struct{}

// Method is a method.
func (T) Method() {}

// Grouped values share the group's comment.
const (
	A = 1
	B = 2
)

func unexported() {}
