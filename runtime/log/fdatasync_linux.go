package log

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable without its metadata that reading the
// data does not need (the modification time): the journal's writes change
// neither its size nor its blocks, so this is one device flush.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
