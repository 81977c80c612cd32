package testcert_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hubwire/hubwire/internal/testcert"
)

// Write a CA and a server certificate as PEM files for a broker configured
// by file name (mosquitto's cafile, certfile and keyfile), and issue a
// device certificate for X.509 authentication.
func ExampleCA_WriteFiles() {
	ca, err := testcert.NewCA(testcert.Options{})
	if err != nil {
		log.Fatal(err)
	}
	server, err := ca.Server("hub.example.test")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "testcert")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files, err := ca.WriteFiles(dir, "server", server)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(files.CAFile), filepath.Base(files.CertFile), filepath.Base(files.KeyFile))
	fmt.Println(server.Leaf.DNSNames, server.Leaf.IPAddresses)

	device, err := ca.Client("dev1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(device.Leaf.Subject.CommonName, len(device.SHA256Thumbprint()))
	// Output:
	// ca.pem server.pem server-key.pem
	// [localhost hub.example.test] [127.0.0.1 ::1]
	// dev1 64
}
