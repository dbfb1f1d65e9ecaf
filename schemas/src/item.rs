//! What a case is about: the project and the item (事項) applied for, and the bureau that
//! handles each item.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bureau::BureauId;
use crate::codes::ProjectCode;
use crate::common::Name;
use crate::normalize::Problem;
use crate::text::clean;

/// A construction project, identified by its national investment project code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The national investment project code.
    pub code: ProjectCode,
    /// The project's registered name.
    pub name: Name,
}

/// The kind of a case (事項): which permit or review is applied for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// 建設用地規劃許可證.
    LandUsePlanningPermit,
    /// 建設工程規劃許可證.
    ConstructionPlanningPermit,
    /// 規劃資源驗收.
    PlanningVerification,
    /// 供水接入 (water connection as one step).
    WaterSupplyConnection,
    /// 排水許可.
    DrainagePermit,
    /// 城市道路挖掘許可.
    RoadExcavationPermit,
    /// 交通影響評價審查.
    TrafficImpactReview,
    /// 涉路施工交通安全審核 (done within one working day).
    RoadWorksTrafficSafety,
    /// 人防工程設計審查.
    CivilDefenseDesignReview,
    /// 人防工程竣工驗收備案.
    CivilDefenseCompletionFiling,
    /// 臨時佔用綠地審批.
    GreenLandOccupation,
    /// 樹木砍伐審批.
    TreeFelling,
    /// 綠化配套方案審查.
    GreeningPlanReview,
    /// 商品房預售許可 (pre-sale permit of a new building's units).
    PreSalePermit,
    /// 不動產首次登記 (the first title registration of a new building).
    TitleRegistration,
}

impl Item {
    /// Every item.
    pub const ALL: [Item; 15] = [
        Self::LandUsePlanningPermit,
        Self::ConstructionPlanningPermit,
        Self::PlanningVerification,
        Self::WaterSupplyConnection,
        Self::DrainagePermit,
        Self::RoadExcavationPermit,
        Self::TrafficImpactReview,
        Self::RoadWorksTrafficSafety,
        Self::CivilDefenseDesignReview,
        Self::CivilDefenseCompletionFiling,
        Self::GreenLandOccupation,
        Self::TreeFelling,
        Self::GreeningPlanReview,
        Self::PreSalePermit,
        Self::TitleRegistration,
    ];

    /// The bureau that handles cases of this item.
    pub fn bureau(self) -> BureauId {
        match self {
            Self::LandUsePlanningPermit
            | Self::ConstructionPlanningPermit
            | Self::PlanningVerification => BureauId::Planning,
            Self::WaterSupplyConnection | Self::DrainagePermit => BureauId::Water,
            Self::RoadExcavationPermit | Self::TrafficImpactReview => BureauId::Transport,
            Self::RoadWorksTrafficSafety => BureauId::TrafficPolice,
            Self::CivilDefenseDesignReview | Self::CivilDefenseCompletionFiling => {
                BureauId::CivilDefense
            }
            Self::GreenLandOccupation | Self::TreeFelling | Self::GreeningPlanReview => {
                BureauId::Greenery
            }
            Self::PreSalePermit | Self::TitleRegistration => BureauId::Housing,
        }
    }

    /// The canonical snake_case code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Self::LandUsePlanningPermit => "land_use_planning_permit",
            Self::ConstructionPlanningPermit => "construction_planning_permit",
            Self::PlanningVerification => "planning_verification",
            Self::WaterSupplyConnection => "water_supply_connection",
            Self::DrainagePermit => "drainage_permit",
            Self::RoadExcavationPermit => "road_excavation_permit",
            Self::TrafficImpactReview => "traffic_impact_review",
            Self::RoadWorksTrafficSafety => "road_works_traffic_safety",
            Self::CivilDefenseDesignReview => "civil_defense_design_review",
            Self::CivilDefenseCompletionFiling => "civil_defense_completion_filing",
            Self::GreenLandOccupation => "green_land_occupation",
            Self::TreeFelling => "tree_felling",
            Self::GreeningPlanReview => "greening_plan_review",
            Self::PreSalePermit => "pre_sale_permit",
            Self::TitleRegistration => "title_registration",
        }
    }

    /// The item's name in traditional characters.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::LandUsePlanningPermit => "建設用地規劃許可證",
            Self::ConstructionPlanningPermit => "建設工程規劃許可證",
            Self::PlanningVerification => "規劃資源驗收",
            Self::WaterSupplyConnection => "供水接入",
            Self::DrainagePermit => "排水許可",
            Self::RoadExcavationPermit => "城市道路挖掘許可",
            Self::TrafficImpactReview => "交通影響評價審查",
            Self::RoadWorksTrafficSafety => "涉路施工交通安全審核",
            Self::CivilDefenseDesignReview => "人防工程設計審查",
            Self::CivilDefenseCompletionFiling => "人防工程竣工驗收備案",
            Self::GreenLandOccupation => "臨時佔用綠地審批",
            Self::TreeFelling => "樹木砍伐審批",
            Self::GreeningPlanReview => "綠化配套方案審查",
            Self::PreSalePermit => "商品房預售許可",
            Self::TitleRegistration => "不動產首次登記",
        }
    }

    /// The item's name in simplified characters (a character-for-character spelling of
    /// [`Item::name_zh`]).
    pub fn name_zh_simplified(self) -> &'static str {
        match self {
            Self::LandUsePlanningPermit => "建设用地规划许可证",
            Self::ConstructionPlanningPermit => "建设工程规划许可证",
            Self::PlanningVerification => "规划资源验收",
            Self::WaterSupplyConnection => "供水接入",
            Self::DrainagePermit => "排水许可",
            Self::RoadExcavationPermit => "城市道路挖掘许可",
            Self::TrafficImpactReview => "交通影响评价审查",
            Self::RoadWorksTrafficSafety => "涉路施工交通安全审核",
            Self::CivilDefenseDesignReview => "人防工程设计审查",
            Self::CivilDefenseCompletionFiling => "人防工程竣工验收备案",
            Self::GreenLandOccupation => "临时占用绿地审批",
            Self::TreeFelling => "树木砍伐审批",
            Self::GreeningPlanReview => "绿化配套方案审查",
            Self::PreSalePermit => "商品房预售许可",
            Self::TitleRegistration => "不动产首次登记",
        }
    }

    /// Parses the canonical code.
    pub fn parse_code(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        Self::ALL
            .into_iter()
            .find(|item| item.code() == text)
            .ok_or(Problem::UnknownCode {
                vocabulary: "item code",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_an_item_names_one_item() {
        type Spelling = fn(Item) -> &'static str;
        let spellings: [(&str, Spelling); 3] = [
            ("code", Item::code),
            ("name_zh", Item::name_zh),
            ("name_zh_simplified", Item::name_zh_simplified),
        ];
        for (name, spell) in spellings {
            let mut seen = std::collections::BTreeSet::new();
            for item in Item::ALL {
                assert!(
                    seen.insert(spell(item)),
                    "{name} {:?} names two items",
                    spell(item)
                );
            }
        }
        for item in Item::ALL {
            assert_eq!(
                item.name_zh_simplified().chars().count(),
                item.name_zh().chars().count(),
                "{item:?}: the simplified name spells the traditional one"
            );
        }
    }
}
