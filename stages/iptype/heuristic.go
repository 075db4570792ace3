package iptype

import "strings"

// The organisation-name heuristic, after upstream's: a name naming a cloud
// provider is cloud with that provider; one with a hosting word is
// hosting; one naming a residential ISP or an access-network word is
// residential. Keywords are matched in lower case as substrings, cloud
// first, so "Amazon Data Services" is aws rather than hosting.

type keyword struct{ word, provider string }

var cloudKeywords = []keyword{
	{"amazon", "aws"}, {"aws", "aws"},
	{"google", "gcp"},
	{"microsoft", "azure"}, {"azure", "azure"},
	{"digitalocean", "digitalocean"},
	{"linode", "linode"}, {"akamai connected cloud", "linode"},
	{"vultr", "vultr"}, {"choopa", "vultr"},
	{"hetzner", "hetzner"},
	{"ovh", "ovh"},
	{"oracle", "oracle"},
	{"alibaba", "alibaba"}, {"aliyun", "alibaba"},
	{"tencent", "tencent"},
	{"huawei cloud", "huawei"}, {"huaweicloud", "huawei"},
	{"scaleway", "scaleway"},
	{"ibm cloud", "ibm"}, {"softlayer", "ibm"},
}

var hostingKeywords = []string{
	"hosting", "hoster", " host ", "datacenter", "data center", "data-center", "server", "vps",
	"colocation", " colo ", "cloud", "dedicated", "leaseweb", "contabo", "m247", "psychz",
	"quadranet", "ionos", "godaddy", "hostinger", "cdn",
}

var residentialKeywords = []string{
	"telecom", "telekom", "broadband", "cable", "dsl", "fiber", "fibre", "mobile", "wireless",
	"cellular", "comcast", "verizon", "at&t", "charter", "spectrum", "cox communications",
	"telefonica", "vodafone", "orange", "chinanet", "china unicom", "china mobile", "unicom",
	"kt corporation", "sk broadband", "bharti", "airtel", "reliance jio", "vnpt", "viettel",
	"telmex", "claro", "rostelecom", "turk telekom", " tim ", "telstra", "bell canada", "rogers",
	"shaw", "sky broadband", "virgin media", " bt ", "free sas", "proximus", "swisscom", "kpn",
	"internet service provider", " isp ",
}

// heuristic classifies an organisation name; ok is false when no keyword
// matches.
func heuristic(name string) (class Classification, ok bool) {
	n := " " + strings.ToLower(strings.TrimSpace(name)) + " "
	if strings.TrimSpace(n) == "" {
		return Classification{}, false
	}
	for _, k := range cloudKeywords {
		if strings.Contains(n, k.word) {
			return Classification{IPType: TypeCloud, Provider: k.provider}, true
		}
	}
	for _, w := range hostingKeywords {
		if strings.Contains(n, w) {
			return Classification{IPType: TypeHosting}, true
		}
	}
	for _, w := range residentialKeywords {
		if strings.Contains(n, w) {
			return Classification{IPType: TypeResidential}, true
		}
	}
	return Classification{}, false
}
