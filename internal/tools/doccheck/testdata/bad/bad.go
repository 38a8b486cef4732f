package bad

func Undocumented() {}

type T struct{}

func (T) Method() {}

const Loose = 1

// Grouped values share the group's comment.
const (
	A = 1
	B = 2
)

type hidden struct{}

func (hidden) Exported() {}
