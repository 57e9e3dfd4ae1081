package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable that overrides a setting:
// MDEBRIDGE_<SECTION>_<KEY>, e.g. MDEBRIDGE_AZURE_TENANT_ID, MDEBRIDGE_STORE_PATH,
// MDEBRIDGE_AZURE_ENDPOINTS_MDE.
const EnvPrefix = "MDEBRIDGE_"

// azureEnv are the variables azidentity defines; they fill settings that
// neither the file nor an MDEBRIDGE_ variable gave.
var azureEnv = []struct {
	name  string
	field func(*Azure) any
}{
	{"AZURE_TENANT_ID", func(a *Azure) any { return &a.TenantID }},
	{"AZURE_CLIENT_ID", func(a *Azure) any { return &a.ClientID }},
	{"AZURE_CLIENT_SECRET", func(a *Azure) any { return &a.ClientSecret }},
	{"AZURE_CLIENT_CERTIFICATE_PATH", func(a *Azure) any { return &a.ClientCertificatePath }},
	{"AZURE_CLIENT_CERTIFICATE_PASSWORD", func(a *Azure) any { return &a.ClientCertificatePassword }},
}

// EnvNames lists every MDEBRIDGE_ variable the overlay reads, for documentation.
func EnvNames() []string {
	var names []string
	walkEnv(reflect.ValueOf(&Config{}).Elem(), EnvPrefix, func(name string, _ reflect.Value) error {
		names = append(names, name)
		return nil
	})
	return names
}

func (c *Config) applyEnv(getenv func(string) string) error {
	err := walkEnv(reflect.ValueOf(c).Elem(), EnvPrefix, func(name string, v reflect.Value) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		if err := setFromString(v, s); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range azureEnv {
		s := getenv(e.name)
		if s == "" {
			continue
		}
		switch p := e.field(&c.Azure).(type) {
		case *string:
			if *p == "" {
				*p = s
			}
		case *Secret:
			if *p == "" {
				*p = Secret(s)
			}
		}
	}
	return nil
}

// walkEnv calls fn for every settable leaf field with its variable name.
func walkEnv(v reflect.Value, prefix string, fn func(string, reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := walkEnv(fv, name+"_", fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(name, fv); err != nil {
			return err
		}
	}
	return nil
}

func setFromString(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 30m or 1h)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list).Convert(v.Type()))
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
