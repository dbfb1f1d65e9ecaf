//! Shanghai's 16 districts (GB/T 2260 codes) and the two management committees that run their
//! own one-stop service centres.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::normalize::Problem;
use crate::text::clean;

/// Where a case is handled: one of Shanghai's 16 districts or one of the two management
/// committees (Lingang new area, Chemical Industry Park), which have no GB/T 2260 code of their
/// own and get the project-defined codes `3101LG` and `3101HG` (documented in `schemas/README.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the table in `District::ALL` names each one
pub enum District {
    Huangpu,
    Xuhui,
    Changning,
    Jingan,
    Putuo,
    Hongkou,
    Yangpu,
    Minhang,
    Baoshan,
    Jiading,
    Pudong,
    Jinshan,
    Songjiang,
    Qingpu,
    Fengxian,
    Chongming,
    /// China (Shanghai) Pilot Free Trade Zone Lingang new area administration.
    Lingang,
    /// Shanghai Chemical Industry Park administration.
    ChemicalIndustryPark,
}

/// One row of the district table: the value, its code, and its names (traditional, simplified).
struct DistrictRow(District, &'static str, &'static str, &'static str);

const TABLE: [DistrictRow; 18] = [
    DistrictRow(District::Huangpu, "310101", "黃浦區", "黄浦区"),
    DistrictRow(District::Xuhui, "310104", "徐匯區", "徐汇区"),
    DistrictRow(District::Changning, "310105", "長寧區", "长宁区"),
    DistrictRow(District::Jingan, "310106", "靜安區", "静安区"),
    DistrictRow(District::Putuo, "310107", "普陀區", "普陀区"),
    DistrictRow(District::Hongkou, "310109", "虹口區", "虹口区"),
    DistrictRow(District::Yangpu, "310110", "楊浦區", "杨浦区"),
    DistrictRow(District::Minhang, "310112", "閔行區", "闵行区"),
    DistrictRow(District::Baoshan, "310113", "寶山區", "宝山区"),
    DistrictRow(District::Jiading, "310114", "嘉定區", "嘉定区"),
    DistrictRow(District::Pudong, "310115", "浦東新區", "浦东新区"),
    DistrictRow(District::Jinshan, "310116", "金山區", "金山区"),
    DistrictRow(District::Songjiang, "310117", "松江區", "松江区"),
    DistrictRow(District::Qingpu, "310118", "青浦區", "青浦区"),
    DistrictRow(District::Fengxian, "310120", "奉賢區", "奉贤区"),
    DistrictRow(District::Chongming, "310151", "崇明區", "崇明区"),
    DistrictRow(District::Lingang, "3101LG", "臨港新片區", "临港新片区"),
    DistrictRow(
        District::ChemicalIndustryPark,
        "3101HG",
        "上海化學工業區",
        "上海化学工业区",
    ),
];

impl District {
    /// Every district and management committee, in code order.
    pub const ALL: [District; 18] = {
        let mut all = [District::Huangpu; 18];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static DistrictRow {
        // The table lists the variants in declaration order.
        &TABLE[self as usize]
    }

    /// The 6-character code: GB/T 2260 for districts, `3101LG` / `3101HG` for the committees.
    pub fn code(self) -> &'static str {
        self.row().1
    }

    /// The name in traditional characters, e.g. `浦東新區`.
    pub fn name_traditional(self) -> &'static str {
        self.row().2
    }

    /// The name in simplified characters, e.g. `浦东新区`.
    pub fn name_simplified(self) -> &'static str {
        self.row().3
    }

    /// The district with this GB/T 2260 code (only the 16 real districts have one).
    pub fn from_gb2260(code: &str) -> Option<District> {
        TABLE[..16]
            .iter()
            .find(|row| row.1 == code)
            .map(|row| row.0)
    }

    /// Parses a district from its code (`310115`, `3101LG`) only; the committees' codes in
    /// upper case, as every bureau schema writes them (case is not folded: `text::clean`).
    pub fn parse_code(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        TABLE
            .iter()
            .find(|row| row.1 == text)
            .map(|row| row.0)
            .ok_or(Problem::UnknownCode {
                vocabulary: "Shanghai district code (GB/T 2260 3101xx, or 3101LG / 3101HG)",
            })
    }

    /// Parses a district from its full name in traditional or simplified characters only.
    pub fn parse_name(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        TABLE
            .iter()
            .find(|row| row.2 == text || row.3 == text)
            .map(|row| row.0)
            .ok_or(Problem::UnknownCode {
                vocabulary: "Shanghai district name (e.g. 浦東新區 / 浦东新区)",
            })
    }
}

impl fmt::Display for District {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i);
        }
        assert_eq!(District::ALL.len(), 18);
    }

    #[test]
    fn parses_codes_and_names_in_both_scripts() {
        assert_eq!(District::parse_code("310115"), Ok(District::Pudong));
        assert_eq!(
            District::parse_code("３１０１５１"),
            Ok(District::Chongming)
        );
        assert_eq!(District::parse_code("3101LG"), Ok(District::Lingang));
        assert_eq!(District::parse_code("３１０１ＬＧ"), Ok(District::Lingang));
        assert!(District::parse_code("3101lg").is_err());
        assert_eq!(District::parse_name("浦東新區"), Ok(District::Pudong));
        assert_eq!(District::parse_name("浦东新区"), Ok(District::Pudong));
        assert!(District::parse_code("310102").is_err()); // 南市區, merged into Huangpu in 2000
        assert!(District::parse_name("浦東").is_err());
        assert_eq!(District::from_gb2260("3101LG"), None);
    }
}
