package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

const gib = 1 << 30

var _ resource.Resource = (*diskResource)(nil)

// diskResource is a sparse disk image file on the local machine.
type diskResource struct{}

type diskModel struct {
	ID     types.String `tfsdk:"id"`
	Path   types.String `tfsdk:"path"`
	SizeGB types.Int64  `tfsdk:"size_gb"`
}

// NewDiskResource returns the enginelocal_disk resource.
func NewDiskResource() resource.Resource { return &diskResource{} }

func (r *diskResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_disk"
}

func (r *diskResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A sparse disk image: a file truncated to size_gb GiB, using no blocks until written.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				Description:   "The file path.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				Required:      true,
				Description:   "Absolute path of the image file.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{absPathValidator{}},
			},
			"size_gb": schema.Int64Attribute{
				Required:    true,
				Description: "Size in GiB, 1 to 2048.",
				Validators:  []validator.Int64{int64Between{min: 1, max: 2048}},
			},
		},
	}
}

func (r *diskResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	simulateLatency()
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *diskResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	simulateLatency()
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *diskResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state diskModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}

	info, err := os.Stat(state.Path.ValueString())
	if errors.Is(err, fs.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading disk image", err.Error())
		return
	}
	if !info.Mode().IsRegular() {
		resp.Diagnostics.AddError("Reading disk image", fmt.Sprintf("%s is not a regular file", state.Path.ValueString()))
		return
	}

	state.ID = state.Path
	// Whole GiB, rounded down: a file resized out of band to anything other
	// than the configured size reads as a different size_gb, i.e. drift.
	state.SizeGB = types.Int64Value(info.Size() / gib)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *diskResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	simulateLatency()
	var state diskModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := removeFile(state.Path.ValueString()); err != nil {
		resp.Diagnostics.AddError("Deleting disk image", err.Error())
	}
}

// apply creates or resizes the image to the planned size. Truncate both grows
// (sparsely, as a hole) and shrinks, so create and update are the same call;
// shrinking discards the tail, as resizing a real disk down would.
func (r *diskResource) apply(ctx context.Context, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics) {
	var m diskModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	if err := resizeImage(m.Path.ValueString(), m.SizeGB.ValueInt64()*gib); err != nil {
		diags.AddError("Writing disk image", err.Error())
		return
	}
	m.ID = m.Path
	diags.Append(state.Set(ctx, m)...)
}

func resizeImage(name string, size int64) error {
	if err := ensureParent(name); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
