package web

// The terms of the signup form (signup.terms): one checkbox per term, named
// "terms" with the tag as value, its label in the request's language and a
// link to the term's text; an "agree to all" submit button that works
// without JavaScript (the broker ticks every term for agree_all), and an
// "agree to all" checkbox that static/terms.js shows and drives.

type termView struct {
	ID, Tag, Label, Kind, URL, ViewLabel string
	Required, Checked                    bool
}

// termLabels are the words for well-known tags; any other tag is shown as
// itself.
var termLabels = map[string]map[string]string{
	"service":     {langKO: "서비스 이용약관 동의", langEN: "Terms of Service"},
	"privacy":     {langKO: "개인정보 수집 및 이용 동의", langEN: "Collection and use of personal information"},
	"third_party": {langKO: "개인정보 제3자 제공 동의", langEN: "Sharing personal information with third parties"},
	"location":    {langKO: "위치기반 서비스 이용약관 동의", langEN: "Location-based services terms"},
	"marketing":   {langKO: "마케팅 정보 수신 동의", langEN: "Receiving marketing messages"},
	"age":         {langKO: "만 14세 이상입니다", langEN: "I am 14 years of age or older"},
}

func termLabel(lang, tag string) string {
	if l, ok := termLabels[tag]; ok {
		return l[lang]
	}
	return tag
}

func termViews(lang string, terms []SignupTerm) []termView {
	ko := lang == langKO
	out := make([]termView, 0, len(terms))
	for _, t := range terms {
		v := termView{ID: "term-" + t.Tag, Tag: t.Tag, Label: termLabel(lang, t.Tag), URL: t.URL, Required: t.Required, Checked: t.Checked}
		switch {
		case ko && t.Required:
			v.Kind = "(필수)"
		case ko:
			v.Kind = "(선택)"
		case t.Required:
			v.Kind = "(required)"
		default:
			v.Kind = "(optional)"
		}
		v.ViewLabel = "View"
		if ko {
			v.ViewLabel = "보기"
		}
		out = append(out, v)
	}
	return out
}
