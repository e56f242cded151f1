package provider

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ resource.Resource = (*documentResource)(nil)

// documentResource is a JSON definition file on the local machine.
type documentResource struct{}

type documentModel struct {
	ID      types.String `tfsdk:"id"`
	Path    types.String `tfsdk:"path"`
	Content types.String `tfsdk:"content"`
	SHA256  types.String `tfsdk:"sha256"`
}

// NewDocumentResource returns the enginelocal_document resource.
func NewDocumentResource() resource.Resource { return &documentResource{} }

func (r *documentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_document"
}

func (r *documentResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A JSON definition file, stored normalized (sorted keys, two-space indent).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				Description:   "The file path.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				Required:      true,
				Description:   "Absolute path of the file.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{absPathValidator{}},
			},
			"content": schema.StringAttribute{
				Required: true,
				Description: "JSON text; pass jsonencode(...) output. The file holds its normalized form, " +
					"and the state keeps this exact string while the file means the same.",
				Validators: []validator.String{jsonValidator{}},
			},
			"sha256": schema.StringAttribute{
				Computed:    true,
				Description: "SHA-256 of the file's bytes, hex.",
			},
		},
	}
}

func (r *documentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	simulateLatency()
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *documentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state documentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}

	raw, err := os.ReadFile(state.Path.ValueString())
	if errors.Is(err, fs.ErrNotExist) {
		// Gone out of band: drop it from state so the next plan recreates it.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading document", err.Error())
		return
	}

	state.ID = state.Path
	state.SHA256 = types.StringValue(sha256Hex(raw))
	state.Content = types.StringValue(observedContent(raw, state.Content.ValueString()))
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// observedContent is what Read records as content for the file bytes raw.
// While the file means the same JSON as prior (the string last applied) it
// keeps prior verbatim, so the config string and the state compare equal and
// an unchanged plan is empty. Otherwise it records what is on disk, normalized
// when it still parses, so the drift shows up as an in-place update.
func observedContent(raw []byte, prior string) string {
	if jsonEqual(raw, []byte(prior)) {
		return prior
	}
	if normalized, err := normalizeJSON(raw); err == nil {
		return string(normalized)
	}
	return string(raw)
}

func (r *documentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	simulateLatency()
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *documentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	simulateLatency()
	var state documentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := removeFile(state.Path.ValueString()); err != nil {
		resp.Diagnostics.AddError("Deleting document", err.Error())
	}
}

// apply writes the planned content (normalized) to disk; create and update are
// the same atomic rewrite. The state keeps content exactly as configured, not
// the normalized text (see observedContent).
func (r *documentResource) apply(ctx context.Context, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics) {
	var m documentModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	data, err := normalizeJSON([]byte(m.Content.ValueString()))
	if err != nil {
		diags.AddAttributeError(path.Root("content"), "Invalid JSON", err.Error())
		return
	}
	if err := writeFileAtomic(m.Path.ValueString(), data, 0o644); err != nil {
		diags.AddAttributeError(path.Root("path"), "Writing document", err.Error())
		return
	}
	m.ID = m.Path
	m.SHA256 = types.StringValue(sha256Hex(data))
	diags.Append(state.Set(ctx, m)...)
}
