// Package provider implements the enginelocal provider: resources that are
// plain files on the local machine, so the engine can exercise the OpenTofu
// path end to end without any network or cloud account.
package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

var _ provider.Provider = (*enginelocalProvider)(nil)

type enginelocalProvider struct {
	version string
}

// New returns a constructor for the provider, as providerserver.Serve expects.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &enginelocalProvider{version: version}
	}
}

func (p *enginelocalProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "enginelocal"
	resp.Version = p.version
}

func (p *enginelocalProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Provisions real resources (files) on the local machine. Takes no configuration.",
	}
}

func (p *enginelocalProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *enginelocalProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewDocumentResource,
		NewDiskResource,
	}
}

func (p *enginelocalProvider) DataSources(context.Context) []func() datasource.DataSource {
	return nil
}
