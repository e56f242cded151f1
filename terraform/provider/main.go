// Command terraform-provider-enginelocal is the engine's offline "local target"
// provider: it provisions real files on the machine running OpenTofu.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"enginelocal.local/terraform-provider-enginelocal/internal/provider"
)

// version is the provider release; the engine's filesystem mirror lays the
// binary out under this version, so keep them in step.
var version = "0.1.0"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.opentofu.org/engine/enginelocal",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
