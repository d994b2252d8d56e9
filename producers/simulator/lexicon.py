"""Word lists the simulator draws buyer identities from: names, companies, places, phones.

Plain data only; the drawing and the variant-making live in ``producers.simulator.buyers`` and
``producers.simulator.variants``.
"""

from __future__ import annotations

# (hanzi, pinyin, Cantonese romanisation) in rough frequency order.
SURNAMES: tuple[tuple[str, str, str], ...] = (
    ("王", "Wang", "Wong"), ("李", "Li", "Lee"), ("张", "Zhang", "Cheung"),
    ("刘", "Liu", "Lau"), ("陈", "Chen", "Chan"), ("杨", "Yang", "Yeung"),
    ("黄", "Huang", "Wong"), ("赵", "Zhao", "Chiu"), ("吴", "Wu", "Ng"),
    ("周", "Zhou", "Chow"), ("徐", "Xu", "Tsui"), ("孙", "Sun", "Suen"),
    ("马", "Ma", "Ma"), ("朱", "Zhu", "Chu"), ("胡", "Hu", "Wu"), ("郭", "Guo", "Kwok"),
    ("何", "He", "Ho"), ("林", "Lin", "Lam"), ("罗", "Luo", "Law"), ("高", "Gao", "Ko"),
    ("梁", "Liang", "Leung"), ("郑", "Zheng", "Cheng"), ("谢", "Xie", "Tse"),
    ("宋", "Song", "Sung"), ("唐", "Tang", "Tong"), ("许", "Xu", "Hui"), ("韩", "Han", "Hon"),
    ("冯", "Feng", "Fung"), ("邓", "Deng", "Tang"), ("曹", "Cao", "Tso"),
    ("彭", "Peng", "Pang"), ("曾", "Zeng", "Tsang"), ("肖", "Xiao", "Siu"),
    ("田", "Tian", "Tin"), ("董", "Dong", "Tung"), ("潘", "Pan", "Poon"),
    ("袁", "Yuan", "Yuen"), ("蔡", "Cai", "Choi"), ("蒋", "Jiang", "Tseung"),
    ("余", "Yu", "Yu"), ("叶", "Ye", "Yip"), ("杜", "Du", "To"), ("苏", "Su", "So"),
    ("魏", "Wei", "Ngai"), ("程", "Cheng", "Ching"), ("吕", "Lyu", "Lui"),
    ("丁", "Ding", "Ting"), ("沈", "Shen", "Shum"), ("任", "Ren", "Yam"),
    ("姚", "Yao", "Yiu"), ("卢", "Lu", "Lo"), ("钟", "Zhong", "Chung"), ("谭", "Tan", "Tam"),
    ("陆", "Lu", "Luk"), ("范", "Fan", "Fan"), ("汪", "Wang", "Wong"), ("廖", "Liao", "Liu"),
    ("石", "Shi", "Shek"), ("金", "Jin", "Kam"), ("夏", "Xia", "Ha"), ("方", "Fang", "Fong"),
    ("邹", "Zou", "Chau"), ("熊", "Xiong", "Hung"), ("白", "Bai", "Pak"),
    ("孟", "Meng", "Mang"), ("秦", "Qin", "Chun"), ("邱", "Qiu", "Yau"), ("侯", "Hou", "Hau"),
    ("江", "Jiang", "Kong"), ("薛", "Xue", "Sit"), ("雷", "Lei", "Lui"), ("龙", "Long", "Lung"),
    ("顾", "Gu", "Ku"), ("毛", "Mao", "Mo"), ("龚", "Gong", "Kung"), ("邵", "Shao", "Shiu"),
    ("钱", "Qian", "Chin"), ("严", "Yan", "Yim"), ("欧阳", "Ouyang", "Au-Yeung"),
)

# given-name characters: (hanzi, pinyin, homophones a hurried typist might pick instead)
GIVEN_CHARS: tuple[tuple[str, str, str], ...] = (
    ("伟", "wei", "炜玮"), ("芳", "fang", "方"), ("娜", "na", "纳"), ("敏", "min", "闵"),
    ("静", "jing", "婧晶"), ("丽", "li", "莉俐"), ("强", "qiang", ""), ("磊", "lei", "蕾"),
    ("军", "jun", "君"), ("洋", "yang", "阳"), ("勇", "yong", "永"), ("艳", "yan", "燕妍"),
    ("杰", "jie", "洁"), ("娟", "juan", "鹃"), ("涛", "tao", "韬"), ("明", "ming", "铭鸣"),
    ("超", "chao", ""), ("秀", "xiu", ""), ("霞", "xia", "夏"), ("平", "ping", "萍"),
    ("刚", "gang", "钢"), ("英", "ying", "瑛"), ("华", "hua", "桦"), ("玉", "yu", "钰"),
    ("红", "hong", "虹宏"), ("建", "jian", "健"), ("文", "wen", "雯"), ("辉", "hui", "晖"),
    ("宇", "yu", "雨语"), ("鹏", "peng", ""), ("婷", "ting", "亭"), ("雪", "xue", ""),
    ("琳", "lin", "霖"), ("晨", "chen", "辰"), ("欣", "xin", "鑫馨"), ("怡", "yi", "仪依"),
    ("佳", "jia", "嘉"), ("浩", "hao", "昊"), ("子", "zi", "梓"), ("轩", "xuan", "萱"),
    ("涵", "han", "晗"), ("诗", "shi", ""), ("思", "si", ""), ("俊", "jun", "峻"),
    ("博", "bo", ""), ("天", "tian", ""), ("晓", "xiao", "小"), ("海", "hai", ""),
    ("志", "zhi", "智"), ("国", "guo", ""), ("春", "chun", ""), ("丹", "dan", ""),
    ("颖", "ying", "莹"), ("慧", "hui", "惠"), ("倩", "qian", "茜"), ("琦", "qi", "琪"),
    ("悦", "yue", "越"), ("梦", "meng", ""), ("瑶", "yao", ""), ("凯", "kai", "恺"),
    ("飞", "fei", "菲"), ("然", "ran", ""), ("宁", "ning", ""), ("美", "mei", ""),
    ("东", "dong", "冬"), ("立", "li", "力"), ("新", "xin", ""), ("云", "yun", "芸"),
    ("泽", "ze", ""), ("雅", "ya", ""),
)

# Very common full names; drawn now and then so that namesakes occur naturally.
COMMON_NAMES: tuple[tuple[str, str], ...] = (
    ("王", "伟"), ("张", "伟"), ("王", "芳"), ("李", "伟"), ("李", "娜"), ("张", "敏"),
    ("李", "静"), ("王", "静"), ("刘", "伟"), ("王", "秀英"), ("张", "丽"), ("王", "丽"),
)

HK_ENGLISH_NAMES = (
    "Kelvin", "Winnie", "Ivan", "Carmen", "Terence", "Joyce", "Eric", "Vivian", "Raymond",
    "Karen", "Alan", "Cherry", "Derek", "Fiona",
)

# Foreign given and family names per country.
FOREIGN_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "KR": (("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Ji-woo", "Soo-min"),
           ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon")),
    "JP": (("Yuki", "Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Kenji", "Naomi"),
           ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura")),
    "IT": (("Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Matteo", "Sofia"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci")),
    "US": (("James", "Emily", "Michael", "Sarah", "David", "Jessica", "Daniel", "Olivia"),
           ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson")),
    "GB": (("Oliver", "Amelia", "Harry", "Isla", "George", "Emily", "Jack", "Charlotte"),
           ("Smith", "Jones", "Taylor", "Brown", "Evans", "Walker", "Wright", "Thompson")),
    "DE": (("Lukas", "Anna", "Felix", "Laura", "Jonas", "Lena", "Maximilian", "Katharina"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker")),
    "FR": (("Camille", "Louis", "Chloé", "Hugo", "Léa", "Antoine", "Manon", "Julien"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Lefèvre", "Richard", "Petit", "Durand")),
}
# Countries whose people usually write the family name first.
FAMILY_FIRST = frozenset({"CN", "HK", "KR", "JP"})

# Chinese company names: brand word (hanzi, pinyin) and line of business (hanzi, English).
BRAND_WORDS: tuple[tuple[str, str], ...] = (
    ("锦绣", "Jinxiu"), ("华美", "Huamei"), ("盛世", "Shengshi"), ("雅歌", "Yage"),
    ("衣尚", "Yishang"), ("云裳", "Yunshang"), ("尚品", "Shangpin"), ("恒源", "Hengyuan"),
    ("新潮", "Xinchao"), ("天成", "Tiancheng"), ("金梭", "Jinsuo"), ("丝路", "Silu"),
    ("蓝海", "Lanhai"), ("青禾", "Qinghe"), ("晨星", "Chenxing"), ("启航", "Qihang"),
    ("若水", "Ruoshui"), ("木棉", "Mumian"), ("纤云", "Xianyun"), ("素锦", "Sujin"),
    ("织梦", "Zhimeng"), ("拾光", "Shiguang"), ("简素", "Jiansu"), ("童趣", "Tongqu"),
)
BUSINESS_KINDS: tuple[tuple[str, str], ...] = (
    ("服饰", "Apparel"), ("贸易", "Trading"), ("时装", "Fashion"), ("服装", "Garment"),
    ("品牌管理", "Brand Management"), ("电子商务", "E-Commerce"),
    ("供应链管理", "Supply Chain Management"), ("纺织品", "Textiles"),
    ("进出口", "Import & Export"),
)
ZH_SUFFIXES = ("有限公司", "有限公司", "有限公司", "股份有限公司")
ZH_SUFFIX_VARIANTS = {"有限公司": ("有限责任公司", ""), "股份有限公司": ("有限公司", "")}
EN_SUFFIX_VARIANTS: dict[str, tuple[str, ...]] = {
    "Co., Ltd.": ("Co.,Ltd.", "Co. Ltd", "CO., LTD.", "Company Limited", "Ltd.", ""),
    "Limited": ("Ltd.", "Ltd", "LIMITED", ""),
    "Ltd": ("Limited", "Ltd.", ""),
    "Inc.": ("Inc", "Incorporated", "INC.", ""),
    "LLC": ("L.L.C.", ""),
    "GmbH": ("Gmbh", "GMBH", ""),
    "AG": ("",),
    "S.r.l.": ("Srl", "SRL", "s.r.l.", ""),
    "S.p.A.": ("SpA", "S.P.A.", ""),
    "SAS": ("S.A.S.", ""),
    "SARL": ("S.A.R.L.", "Sàrl", ""),
    "K.K.": ("Co., Ltd.", "KK", ""),
    "Corp.": ("Corporation", "Corp", ""),
}

# Words a desk clerk or a business card shortens in a company name (first match used).
COMPANY_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("International", "Intl"), ("Trading", "Trdg"), ("Supply Chain Management", "SCM"),
    ("Brand Management", "Brand Mgmt"), ("Management", "Mgmt"), ("Import & Export", "I/E"),
    ("E-Commerce", "E-Com"), ("Garment", "Gmt"), ("Textiles", "Tex"), ("Textile", "Tex"),
    ("Apparel", "Appl"), ("Fashion", "Fash"), ("Sourcing", "Srcg"), ("Company", "Co"),
    ("Corporation", "Corp"), ("Limited", "Ltd"), ("进出口", "进出"), ("供应链管理", "供应链"),
    ("电子商务", "电商"), ("品牌管理", "品牌"),
)
# Hanzi a card's OCR confuses with a lookalike (names and company words of this lexicon).
HANZI_LOOKALIKES = {
    "王": "玉", "玉": "王", "天": "夭", "明": "朋", "宇": "字", "春": "舂", "白": "自",
    "田": "由", "金": "全", "子": "孑", "晨": "晟", "丽": "雨", "东": "车", "美": "姜",
    "洋": "泮", "华": "毕", "云": "去", "立": "丘", "海": "悔", "新": "亲",
}

# Foreign company cores and the legal suffixes used there.
FOREIGN_COMPANIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "HK": (("Victoria Harbour Trading", "Kowloon Fashion", "Pearl River Apparel",
            "Golden Bauhinia Garment", "Lion Rock Sourcing"), ("Limited", "Co., Ltd.")),
    "KR": (("Seoul Style", "Hanbit Fashion", "Dongdaemun Trading", "Gangnam Select"),
           ("Co., Ltd.", "Corp.")),
    "JP": (("Tokyo Fabric", "Sakura Apparel", "Shibuya Select", "Osaka Textile"),
           ("Co., Ltd.", "K.K.")),
    "IT": (("Moda Milano", "Tessuti Bianchi", "Atelier Riva", "Stile Italiano"),
           ("S.r.l.", "S.p.A.")),
    "US": (("Blue Harbor Apparel", "Westline Brands", "Summit Outfitters",
            "Golden Gate Trading"), ("Inc.", "LLC")),
    "GB": (("Thames Fashion", "Northern Knit", "Savile Sourcing"), ("Ltd", "Limited")),
    "DE": (("Nordwind Textil", "Berliner Mode", "Stoffhaus Weber", "Isar Fashion"),
           ("GmbH", "AG")),
    "FR": (("Maison Lumière", "Atelier Durand", "Mode Paris Est", "Belle Époque Textiles"),
           ("SAS", "SARL")),
}
# Chinese trade names of Hong Kong companies, same order as FOREIGN_COMPANIES["HK"].
HK_COMPANIES_ZH = ("维港贸易", "九龙时装", "珠江服饰", "金紫荆制衣", "狮子山采购")

# Chinese cities: province (zh, en), city (zh, en), postcode prefix, districts (zh, en).
CN_CITIES: tuple[tuple[str, str, str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("浙江省", "Zhejiang", "杭州市", "Hangzhou", "3100",
     (("西湖区", "Xihu"), ("上城区", "Shangcheng"), ("滨江区", "Binjiang"))),
    ("上海市", "Shanghai", "上海市", "Shanghai", "2000",
     (("静安区", "Jing'an"), ("徐汇区", "Xuhui"), ("长宁区", "Changning"),
      ("浦东新区", "Pudong New Area"))),
    ("北京市", "Beijing", "北京市", "Beijing", "1000",
     (("朝阳区", "Chaoyang"), ("海淀区", "Haidian"), ("东城区", "Dongcheng"))),
    ("广东省", "Guangdong", "广州市", "Guangzhou", "5100",
     (("天河区", "Tianhe"), ("越秀区", "Yuexiu"), ("海珠区", "Haizhu"))),
    ("广东省", "Guangdong", "深圳市", "Shenzhen", "5180",
     (("南山区", "Nanshan"), ("福田区", "Futian"), ("罗湖区", "Luohu"))),
    ("江苏省", "Jiangsu", "苏州市", "Suzhou", "2150",
     (("姑苏区", "Gusu"), ("吴中区", "Wuzhong"))),
    ("江苏省", "Jiangsu", "南京市", "Nanjing", "2100",
     (("鼓楼区", "Gulou"), ("秦淮区", "Qinhuai"))),
    ("山东省", "Shandong", "青岛市", "Qingdao", "2660",
     (("市南区", "Shinan"), ("崂山区", "Laoshan"))),
    ("福建省", "Fujian", "厦门市", "Xiamen", "3610", (("思明区", "Siming"), ("湖里区", "Huli"))),
    ("四川省", "Sichuan", "成都市", "Chengdu", "6100",
     (("锦江区", "Jinjiang"), ("武侯区", "Wuhou"))),
    ("湖北省", "Hubei", "武汉市", "Wuhan", "4300", (("江汉区", "Jianghan"), ("武昌区", "Wuchang"))),
    ("浙江省", "Zhejiang", "宁波市", "Ningbo", "3150",
     (("鄞州区", "Yinzhou"), ("海曙区", "Haishu"))),
    ("天津市", "Tianjin", "天津市", "Tianjin", "3000",
     (("和平区", "Heping"), ("南开区", "Nankai"))),
    ("重庆市", "Chongqing", "重庆市", "Chongqing", "4000",
     (("渝中区", "Yuzhong"), ("江北区", "Jiangbei"))),
    ("湖南省", "Hunan", "长沙市", "Changsha", "4100", (("岳麓区", "Yuelu"), ("芙蓉区", "Furong"))),
    ("河南省", "Henan", "郑州市", "Zhengzhou", "4500", (("金水区", "Jinshui"), ("二七区", "Erqi"))),
    ("陕西省", "Shaanxi", "西安市", "Xi'an", "7100", (("雁塔区", "Yanta"), ("碑林区", "Beilin"))),
    ("广东省", "Guangdong", "东莞市", "Dongguan", "5230",
     (("南城区", "Nancheng"), ("东城区", "Dongcheng"))),
    ("浙江省", "Zhejiang", "温州市", "Wenzhou", "3250",
     (("鹿城区", "Lucheng"), ("瓯海区", "Ouhai"))),
)
# Weights: big sourcing cities first.
CN_CITY_WEIGHTS = (9, 12, 8, 10, 9, 5, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 3, 3)

# Road names (hanzi, pinyin) and road kinds (hanzi, English, abbreviation).
ROADS: tuple[tuple[str, str], ...] = (
    ("人民", "Renmin"), ("中山", "Zhongshan"), ("解放", "Jiefang"), ("建设", "Jianshe"),
    ("文三", "Wensan"), ("延安", "Yan'an"), ("长江", "Changjiang"), ("新华", "Xinhua"),
    ("和平", "Heping"), ("东风", "Dongfeng"), ("科技", "Keji"), ("学院", "Xueyuan"),
    ("世纪", "Shiji"), ("湖滨", "Hubin"), ("凤凰", "Fenghuang"), ("金桥", "Jinqiao"),
)
ROAD_KINDS: tuple[tuple[str, str, str], ...] = (
    ("路", "Road", "Rd."), ("街", "Street", "St."), ("大道", "Avenue", "Ave."),
    ("东路", "East Road", "E. Rd."), ("中路", "Middle Road", "M. Rd."),
)
# A wrong character a typist may produce for a road-name character.
ROAD_TYPOS = {"三": "山", "中": "钟", "建": "健", "新": "心", "和": "合", "东": "冬", "长": "常",
              "民": "明", "放": "方", "华": "化", "世": "市", "湖": "胡", "金": "今", "学": "雪"}
TOWERS: tuple[tuple[str, str], ...] = (
    ("国际", "International"), ("金融", "Finance"), ("时代", "Times"), ("世贸", "World Trade"),
    ("银泰", "Yintai"), ("中心", "Central"),
)

# Foreign places: province/state, city (and an alternative spelling), postcode maker,
# street names, street-kind abbreviations.
FOREIGN_PLACES: dict[str, dict[str, object]] = {
    "HK": {"province": ("Kowloon", "Hong Kong Island"), "city": ("Hong Kong", "HK"),
           "streets": ("Nathan Road", "Canton Road", "Des Voeux Road Central", "Queen's Road East"),
           "postcode": None},
    "KR": {"province": ("Seoul",), "city": ("Seoul", "Seoul-si"),
           "streets": ("Teheran-ro", "Dosan-daero", "Apgujeong-ro", "Eulji-ro"),
           "postcode": "#####"},
    "JP": {"province": ("Tokyo", "Osaka"), "city": ("Tokyo", "Tokyo-to"),
           "streets": ("Jingumae", "Ginza", "Aoyama", "Ebisu"), "postcode": "###-####"},
    "IT": {"province": ("Lombardia", "MI"), "city": ("Milano", "Milan"),
           "streets": ("Via della Spiga", "Via Montenapoleone", "Corso Como", "Via Tortona"),
           "postcode": "201##"},
    "US": {"province": ("NY", "New York"), "city": ("New York", "NYC"),
           "streets": ("Seventh Avenue", "Broadway", "West 39th Street", "Madison Avenue"),
           "postcode": "100##"},
    "GB": {"province": ("England", "Greater London"), "city": ("London", "LONDON"),
           "streets": ("Regent Street", "Great Portland Street", "Old Street", "Brick Lane"),
           "postcode": "W1B #AH"},
    "DE": {"province": ("Berlin", "Bayern"), "city": ("Berlin", "BERLIN"),
           "streets": ("Kurfürstendamm", "Friedrichstraße", "Torstraße", "Leopoldstraße"),
           "postcode": "10###"},
    "FR": {"province": ("Île-de-France", "Ile-de-France"), "city": ("Paris", "PARIS"),
           "streets": ("Rue du Faubourg Saint-Honoré", "Avenue Montaigne", "Rue de Rivoli",
                       "Boulevard Haussmann"),
           "postcode": "750##"},
}
STREET_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("Street", "St."), ("Road", "Rd."), ("Avenue", "Ave."), ("Boulevard", "Blvd."),
    ("straße", "str."), ("Rue", "R."), ("Via", "V."), ("Suite", "Ste."), ("Flat", "Flt"),
)

# Phones: country code, national significant number pattern (# = digit), digit groups,
# trunk prefix used when dialling nationally.
PHONES: dict[str, tuple[str, tuple[str, ...], tuple[int, ...], str]] = {
    "CN": ("86", ("13#########", "15#########", "18#########", "17#########", "19#########"),
           (3, 4, 4), ""),
    "HK": ("852", ("9#######", "6#######", "5#######"), (4, 4), ""),
    "KR": ("82", ("10########",), (2, 4, 4), "0"),
    "JP": ("81", ("90########", "80########"), (2, 4, 4), "0"),
    "IT": ("39", ("02########", "34########"), (2, 4, 4), ""),
    "US": ("1", ("212555####", "646555####", "917555####"), (3, 3, 4), ""),
    "GB": ("44", ("20########", "7#########"), (2, 4, 4), "0"),
    "DE": ("49", ("30########", "15########"), (2, 4, 4), "0"),
    "FR": ("33", ("1########", "6########"), (1, 2, 2, 2, 2), "0"),
}

CN_MAIL = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "gmail.com",
           "outlook.com", "139.com")
CN_MAIL_WEIGHTS = (22, 20, 8, 4, 4, 8, 6, 3)
FOREIGN_MAIL: dict[str, tuple[str, ...]] = {
    "HK": ("gmail.com", "yahoo.com.hk", "outlook.com", "netvigator.com"),
    "KR": ("naver.com", "gmail.com", "daum.net"),
    "JP": ("gmail.com", "yahoo.co.jp", "docomo.ne.jp"),
    "IT": ("gmail.com", "libero.it", "outlook.it"),
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com"),
    "GB": ("gmail.com", "outlook.com", "btinternet.com"),
    "DE": ("gmx.de", "web.de", "gmail.com", "t-online.de"),
    "FR": ("orange.fr", "gmail.com", "free.fr", "laposte.net"),
}
PLUS_TAGS = ("cifw", "fair", "2026aw", "sourcing", "buyer", "trade")

BUYER_TYPES = ("brand", "retailer", "wholesaler", "designer", "agent", "ecommerce", "media",
               "other")
BUYER_TYPE_WEIGHTS = (24, 20, 16, 14, 10, 10, 3, 3)
# Units of each currency per CNY, for budgets and order values: exactly the inverse of the
# rates the product ships (infra/clickhouse/rates/cny_rates.csv, CNY per unit; copied, not
# read: producers do not import infra), so an amount converts back to a realistic CNY value.
PER_CNY = {"CNY": 1.0, "HKD": 1 / 0.91, "KRW": 1 / 0.0052, "JPY": 1 / 0.0485, "EUR": 1 / 8.10,
           "USD": 1 / 7.15, "GBP": 1 / 9.55}
CURRENCY_BY_COUNTRY = {"CN": "CNY", "HK": "HKD", "KR": "KRW", "JP": "JPY", "IT": "EUR",
                       "US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR"}
