package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// absPathValidator refuses relative paths and any ".." segment: a module must
// name exactly where a file goes, not something relative to wherever tofu
// happens to run, nor a path that climbs out of the directory it names.
type absPathValidator struct{}

var _ validator.String = absPathValidator{}

func (absPathValidator) Description(context.Context) string {
	return "must be an absolute path without '..' segments"
}

func (v absPathValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (absPathValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	p := req.ConfigValue.ValueString()
	switch {
	case !filepath.IsAbs(p):
		resp.Diagnostics.AddAttributeError(req.Path, "Relative path", fmt.Sprintf("%q is not an absolute path.", p))
	case hasDotDot(p):
		resp.Diagnostics.AddAttributeError(req.Path, "Path escapes its directory", fmt.Sprintf("%q contains a '..' segment.", p))
	case filepath.Clean(p) == "/":
		resp.Diagnostics.AddAttributeError(req.Path, "Path names no file", "The path must name a file, not the root directory.")
	}
}

func hasDotDot(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// jsonValidator refuses content that is not a single JSON value, at plan time
// rather than half-way through an apply.
type jsonValidator struct{}

var _ validator.String = jsonValidator{}

func (jsonValidator) Description(context.Context) string { return "must be valid JSON" }

func (v jsonValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (jsonValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := normalizeJSON([]byte(req.ConfigValue.ValueString())); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid JSON", err.Error())
	}
}

// int64Between is a tiny stand-in for terraform-plugin-framework-validators'
// int64validator.Between, to keep this module to a single dependency.
type int64Between struct{ min, max int64 }

var _ validator.Int64 = int64Between{}

func (v int64Between) Description(context.Context) string {
	return fmt.Sprintf("must be between %d and %d", v.min, v.max)
}

func (v int64Between) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v int64Between) ValidateInt64(ctx context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if n := req.ConfigValue.ValueInt64(); n < v.min || n > v.max {
		resp.Diagnostics.AddAttributeError(req.Path, "Value out of range", fmt.Sprintf("%d %s.", n, v.Description(ctx)))
	}
}
