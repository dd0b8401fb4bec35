package gen

import "hash/fnv"

// Code returns the default wire code of an operation, event or error named
// name: FNV-1a (32 bits) of the name, folded to 16 bits by XOR-ing its
// halves. Codes depend on the name alone, so adding an operation never
// renumbers the others, and an embedded resource's operations keep their
// codes in the resource that embeds them. Code 0 is never used: a name that
// hashes to 0 must be given a code with code=N.
func Code(name string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(name))
	s := h.Sum32()
	return uint16(s>>16) ^ uint16(s)
}
